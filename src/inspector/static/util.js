/** Small DOM and formatting helpers shared by the page's modules. */

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') e.className = v
    else if (k === 'text') e.textContent = v
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v)
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c)
  return e
}

/** The top-level state name, which is what colours and kinds go by (`failed.released` -> `failed`). */
export function stateKind(state) {
  return String(state ?? 'unknown').split('.')[0] || 'unknown'
}

/** A status for an actor from its state alone, until the manager's health verdict arrives. */
export function statusFromState(state) {
  switch (stateKind(state)) {
    case 'running':
      return 'ok'
    case 'starting':
      return 'starting'
    case 'failed':
    case 'restarting':
    case 'suspended':
      return 'recoverable_error'
    case 'gaveUp':
      return 'permanent_error'
    case 'escalated':
      return 'fatal_error'
    default:
      return 'stopped'
  }
}

export function timeOf(iso) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return String(iso ?? '')
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`
}

export function formatRate(n) {
  if (!Number.isFinite(n)) return '0'
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  return String(Math.round(n))
}

/** `collector:<name>` -> `<name>`; the supervisor keeps its id. */
export function actorName(id) {
  return id.startsWith('collector:') ? id.slice('collector:'.length) : id
}

/** `1500` -> `1.5 s`, `60000` -> `60 s`, `250` -> `250 ms`, `5400000` -> `90 min`. */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '–'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 600_000) return `${Math.round(ms / 1000)} s`
  return `${Math.round(ms / 60_000)} min`
}
