import { nsToIso } from '../events/time.js'

/** How `tail` prints events: NDJSON (as the agent writes them), one readable line, or logfmt. */
export type EventFormat = 'json' | 'pretty' | 'logfmt'
export const EVENT_FORMATS: readonly EventFormat[] = ['json', 'pretty', 'logfmt']

interface EventLike {
  readonly timestamp?: unknown
  readonly type?: unknown
  readonly source?: unknown
  readonly severity?: unknown
  readonly entity?: unknown
  readonly data?: unknown
  readonly [k: string]: unknown
}

function isoTime(ts: unknown): string {
  if (typeof ts !== 'string' || !/^\d+$/.test(ts)) return String(ts ?? '-')
  return nsToIso(ts)
}

/** Nested objects as dotted keys: `{ a: { b: 1 } }` -> `a.b=1`. Arrays stay JSON. */
function flatten(prefix: string, v: unknown, out: [string, unknown][]): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>)
    if (entries.length === 0 && prefix) out.push([prefix, '{}'])
    for (const [k, x] of entries) flatten(prefix ? `${prefix}.${k}` : k, x, out)
  } else if (prefix) out.push([prefix, v])
}

function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v)
  return s !== '' && /^[^\s"=\\]+$/.test(s) ? s : JSON.stringify(s)
}

function pairs(entries: readonly [string, unknown][]): string {
  return entries.map(([k, v]) => `${k}=${logfmtValue(v)}`).join(' ')
}

/** One event (the parsed JSON of one `/events` frame) as one line, without the newline. */
export function formatEvent(format: EventFormat, json: string, event?: EventLike): string {
  if (format === 'json') return json
  const e = event ?? (JSON.parse(json) as EventLike)
  if (format === 'logfmt') {
    const rest: [string, unknown][] = []
    for (const [k, v] of Object.entries(e)) {
      if (k === 'timestamp') continue
      flatten(k, v, rest)
    }
    return pairs([['time', isoTime(e.timestamp)], ...rest])
  }
  const data: [string, unknown][] = []
  flatten('', e.data, data)
  const entity = e.entity !== null && typeof e.entity === 'object' ? (e.entity as Record<string, unknown>) : undefined
  const what = entity ? ` ${[entity.kind, entity.namespace, entity.name].filter((x) => typeof x === 'string' && x).join('/')}` : ''
  const severity = String(e.severity ?? 'info').toUpperCase().padEnd(8)
  return `${isoTime(e.timestamp)} ${severity} ${String(e.source ?? '-')} ${String(e.type ?? '-')}${what}${data.length ? ` ${pairs(data)}` : ''}`
}
