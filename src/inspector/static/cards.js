import { actorName, el, formatDuration, formatRate, stateKind } from './util.js'

const SPARK_POINTS = 60
const SAMPLE_ROWS = 8

/** States in which a collector produces nothing: no rate is shown for them. */
const IDLE_KINDS = new Set(['stopped', 'idle', 'gaveUp', 'stopping'])

/** Which control buttons a collector in `kind` gets: only what makes sense from there. */
function actionsFor(kind) {
  switch (kind) {
    case 'stopped':
    case 'idle':
      return ['start']
    case 'gaveUp':
      return ['restart']
    case 'stopping':
      return []
    default:
      return ['restart', 'stop']
  }
}

const LABELS = { start: 'Start', restart: 'Restart', stop: 'Stop' }
const TITLES = {
  start: 'start this collector',
  restart: 'stop it (if running) and start it again; after a give-up, with a fresh restart window',
  stop: 'stop it and keep it registered (it stays stopped until started)',
}

function nsToTime(ns) {
  try {
    const d = new Date(Number(BigInt(ns) / 1_000_000n))
    return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`
  } catch {
    return ''
  }
}

/**
 * One card per actor, drawn only from the feed's snapshots (so it always agrees with the header):
 * state, status colour, events/s with a minute of history, restarts and the restart budget left,
 * the backoff delay (a countdown while waiting), the give-up reason, the last error, the control
 * buttons that fit the state, and an opt-in live sample of the collector's newest events.
 */
export class ActorCards {
  constructor(list, { onSelect, onAction }) {
    this.list = list
    this.onSelect = onSelect
    this.onAction = onAction
    this.cards = new Map()
    this.control = false
    // Countdowns of collectors waiting out their backoff.
    setInterval(() => {
      for (const c of this.cards.values()) if (c.waitUntil) this.renderCountdown(c)
    }, 200)
  }

  clear() {
    for (const c of this.cards.values()) c.sample?.close()
    this.list.replaceChildren()
    this.cards.clear()
  }

  setControl(allowed) {
    this.control = allowed
    for (const c of this.cards.values()) this.renderActions(c)
  }

  ensure(id) {
    let c = this.cards.get(id)
    if (c) return c
    const isSupervisor = id === 'supervisor'
    const name = actorName(id)
    const fact = (label, cls) => {
      const b = el('b', { text: '–' })
      return [el('span', { class: cls }, `${label} `, b), b]
    }
    const stateEl = el('span', { class: 'state-pill', 'data-kind': 'unknown', text: '–' })
    const statusEl = el('span', { class: 'card-status' })
    const [rateFact, rateEl] = fact('events/s', 'card-rate')
    const [restartsFact, restartsEl] = fact('restarts', 'card-restarts')
    const budgetEl = el('span', { class: 'card-budget', title: 'automatic restarts the restart policy still allows within its window' })
    const backoffEl = el('span', { class: 'card-backoff' })
    const spark = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
    spark.setAttribute('class', 'spark')
    spark.setAttribute('viewBox', `0 0 ${SPARK_POINTS} 20`)
    spark.setAttribute('width', '80')
    spark.setAttribute('height', '18')
    spark.setAttribute('preserveAspectRatio', 'none')
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
    spark.appendChild(line)
    const gaveUpEl = el('div', { class: 'card-gaveup', hidden: true })
    const errorEl = el('div', { class: 'card-error', hidden: true })
    const actions = el('div', { class: 'card-actions' })
    const sampleButton = el('button', {
      type: 'button',
      class: 'sample-toggle',
      'data-toggle': 'sample',
      'data-collector': name,
      'aria-pressed': 'false',
      title: "show a live sample of this collector's newest events",
      text: 'Events',
      onclick: (e) => {
        e.stopPropagation()
        this.toggleSample(c)
      },
    })
    const sampleEl = el('div', { class: 'card-sample', hidden: true })
    const collectorsEl = el('b', { text: '0' })
    const body = isSupervisor
      ? [el('div', { class: 'card-facts' }, el('span', {}, 'collectors ', collectorsEl), statusEl)]
      : [
          el('div', { class: 'card-facts' }, statusEl, rateFact),
          el('div', { class: 'card-facts' }, restartsFact, budgetEl, backoffEl),
          gaveUpEl,
          errorEl,
          el('div', { class: 'card-buttons' }, actions, sampleButton),
          sampleEl,
        ]
    const root = el(
      'li',
      {
        class: 'card',
        'data-actor': id,
        'data-state': '',
        'data-status': 'unknown',
        tabindex: 0,
        onclick: () => this.onSelect(id),
        onkeydown: (e) => {
          if (e.target === root && (e.key === 'Enter' || e.key === ' ')) this.onSelect(id)
        },
      },
      el('div', { class: 'card-head' }, el('span', { class: 'card-name', title: id }, name, isSupervisor ? el('span', { class: 'card-kind', text: 'supervisor' }) : null), isSupervisor ? null : spark, stateEl),
      ...body,
      isSupervisor ? errorEl : null,
    )
    c = {
      id, name, isSupervisor, root, stateEl, statusEl, rateEl, restartsEl, budgetEl, backoffEl, line, gaveUpEl, errorEl,
      actions, collectorsEl, sampleButton, sampleEl, sample: undefined, rates: [], removed: false, kind: 'unknown', shownActions: '',
      waitUntil: 0, backoffMs: 0,
    }
    this.cards.set(id, c)
    // The supervisor first, collectors in the order they appear (registration order).
    if (isSupervisor) this.list.prepend(root)
    else this.list.append(root)
    this.renderActions(c)
    return c
  }

  /**
   * Everything one snapshot says about one actor. `facts`: { state, status, message, context,
   * rate, budget, enteredAt } (enteredAt: when it entered its state, for the backoff countdown).
   */
  render(id, facts) {
    const c = this.ensure(id)
    const { state, status, message, context = {} } = facts
    const kind = stateKind(state)
    c.kind = kind
    c.root.dataset.state = state
    c.stateEl.textContent = state
    c.stateEl.dataset.kind = kind
    c.root.dataset.status = status
    c.statusEl.textContent = message ? `${status}: ${message}` : status
    c.statusEl.dataset.status = status
    c.statusEl.title = message ? `${status}: ${message}` : status
    if (c.isSupervisor) {
      c.collectorsEl.textContent = String(Array.isArray(context.order) ? context.order.length : 0)
      this.setText(c.errorEl, typeof context.escalation === 'string' ? `escalated: ${context.escalation}` : '')
      return
    }
    this.renderRate(c, IDLE_KINDS.has(kind) ? undefined : (facts.rate ?? 0))
    const restarts = Number(context.restarts ?? 0)
    c.restartsEl.textContent = String(restarts)
    c.root.dataset.restarts = String(restarts)

    const b = facts.budget
    if (b) {
      c.root.dataset.budgetRemaining = String(b.remaining)
      c.budgetEl.textContent = `budget ${b.remaining}/${b.maxRestarts} per ${formatDuration(b.withinMs)}`
      c.budgetEl.dataset.exhausted = String(b.remaining === 0)
    } else {
      delete c.root.dataset.budgetRemaining
      c.budgetEl.textContent = ''
    }

    // The delay the supervisor chose for the pending (or the last) automatic restart.
    c.backoffMs = Number(context.restartDelayMs ?? 0)
    c.root.dataset.backoffMs = String(c.backoffMs)
    const waiting = state === 'restarting.waiting' && c.backoffMs > 0 && facts.enteredAt
    c.waitUntil = waiting ? facts.enteredAt + c.backoffMs : 0
    this.renderCountdown(c)

    const gaveUp = kind === 'gaveUp' ? String(context.gaveUpReason ?? 'gave up') : ''
    this.setText(c.gaveUpEl, gaveUp ? `gave up: ${gaveUp}` : '')
    c.root.dataset.gaveUpReason = gaveUp
    // The give-up reason already ends with the last error.
    const error = !gaveUp && typeof context.lastError === 'string' ? context.lastError : ''
    this.setText(c.errorEl, error ? `last error: ${error}` : '')
    this.renderActions(c)
  }

  renderCountdown(c) {
    if (c.waitUntil) {
      const left = Math.max(0, c.waitUntil - Date.now())
      c.backoffEl.textContent = `restart in ${formatDuration(left)} (backoff ${formatDuration(c.backoffMs)})`
      c.backoffEl.dataset.waiting = 'true'
    } else {
      c.backoffEl.textContent = c.backoffMs > 0 ? `last backoff ${formatDuration(c.backoffMs)}` : ''
      delete c.backoffEl.dataset.waiting
    }
  }

  renderRate(c, rate) {
    if (rate === undefined) {
      // Stopped or given up: nothing flows, and an old rate would say otherwise.
      c.rateEl.textContent = '–'
      c.root.dataset.rate = '0'
      c.rates = []
      c.line.setAttribute('points', '')
      return
    }
    c.rateEl.textContent = formatRate(rate)
    c.root.dataset.rate = String(rate)
    c.rates.push(rate)
    if (c.rates.length > SPARK_POINTS) c.rates.shift()
    const max = Math.max(1, ...c.rates)
    const offset = SPARK_POINTS - c.rates.length
    c.line.setAttribute('points', c.rates.map((r, i) => `${offset + i},${(19 - (r / max) * 18).toFixed(1)}`).join(' '))
  }

  renderActions(c) {
    if (c.isSupervisor) return
    const wanted = this.control && !c.removed ? actionsFor(c.kind) : []
    const key = wanted.join(',')
    if (key === c.shownActions) return
    c.shownActions = key
    c.actions.replaceChildren(
      ...wanted.map((action) =>
        el('button', {
          type: 'button',
          'data-action': action,
          'data-collector': c.name,
          title: TITLES[action],
          text: LABELS[action],
          onclick: (e) => {
            e.stopPropagation()
            this.onAction(c.name, action)
          },
        }),
      ),
    )
    c.actions.hidden = wanted.length === 0
  }

  setText(node, text) {
    node.hidden = !text
    node.textContent = text
  }

  toggleSample(c) {
    if (c.sample) {
      c.sample.close()
      c.sample = undefined
      c.sampleEl.hidden = true
      c.sampleEl.replaceChildren()
      c.sampleButton.setAttribute('aria-pressed', 'false')
      c.root.dataset.sampling = 'false'
      return
    }
    c.sampleButton.setAttribute('aria-pressed', 'true')
    c.root.dataset.sampling = 'true'
    c.sampleEl.hidden = false
    c.sampleEl.replaceChildren(el('div', { class: 'sample-note muted', text: 'waiting for events…' }))
    const source = new EventSource(`/api/inspect/sample?collector=${encodeURIComponent(c.name)}`)
    source.addEventListener('sample', (e) => {
      let s
      try {
        s = JSON.parse(e.data)
      } catch {
        return
      }
      this.renderSample(c, s)
    })
    c.sample = source
  }

  renderSample(c, s) {
    const rows = (s.events ?? []).slice(-SAMPLE_ROWS).reverse()
    c.sampleEl.dataset.count = String(rows.length)
    c.sampleEl.dataset.fresh = String(s.fresh === true)
    const note = rows.length === 0 ? 'no events seen yet' : s.fresh ? 'newest first, live' : 'no new events in the last second'
    c.sampleEl.replaceChildren(
      el('div', { class: 'sample-note muted', text: note }),
      ...rows.map((ev) =>
        el(
          'div',
          { class: 'sample-row', 'data-type': ev.type, 'data-severity': ev.severity, title: `${ev.type} ${ev.data}` },
          el('span', { class: 'sample-time', text: nsToTime(ev.timestamp) }),
          el('span', { class: 'sample-type', text: ev.type }),
          el('span', { class: 'sample-data', text: ev.data }),
        ),
      ),
    )
  }

  /** A collector removed by a reload leaves the supervisor; keep its card, greyed. */
  setRemoved(id, removed) {
    const c = this.cards.get(id)
    if (!c || c.removed === removed) return
    c.removed = removed
    c.root.dataset.removed = String(removed)
    if (removed) {
      c.statusEl.textContent = 'removed from the supervisor'
      c.root.dataset.status = 'stopped'
      this.renderRate(c, undefined)
      if (c.sample) this.toggleSample(c)
    }
    this.renderActions(c)
  }

  setBusy(name, busy) {
    const c = this.cards.get(`collector:${name}`)
    if (!c) return
    for (const b of c.actions.querySelectorAll('button')) b.disabled = busy
  }

  select(id) {
    for (const c of this.cards.values()) c.root.classList.toggle('selected', c.id === id)
  }
}
