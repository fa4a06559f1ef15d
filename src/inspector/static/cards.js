import { actorName, el, formatRate, stateKind } from './util.js'

const SPARK_POINTS = 60

/** One card per actor: state, status colour, events/s with a minute of history, restarts, last error. */
export class ActorCards {
  constructor(list, { onSelect, onAction }) {
    this.list = list
    this.onSelect = onSelect
    this.onAction = onAction
    this.cards = new Map()
    this.control = false
  }

  clear() {
    this.list.replaceChildren()
    this.cards.clear()
  }

  setControl(allowed) {
    this.control = allowed
    for (const c of this.cards.values()) c.actions.hidden = !allowed || c.isSupervisor || c.removed
  }

  ensure(id) {
    let c = this.cards.get(id)
    if (c) return c
    const isSupervisor = id === 'supervisor'
    const name = actorName(id)
    const stateEl = el('span', { class: 'state-pill', 'data-kind': 'unknown', text: '–' })
    const statusEl = el('span', { class: 'card-status muted' })
    const rateEl = el('b', { text: '0' })
    const restartsEl = el('b', { text: '0' })
    const generationEl = el('b', { text: '0' })
    const spark = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
    spark.setAttribute('class', 'spark')
    spark.setAttribute('viewBox', `0 0 ${SPARK_POINTS} 20`)
    spark.setAttribute('width', '90')
    spark.setAttribute('height', '20')
    spark.setAttribute('preserveAspectRatio', 'none')
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
    spark.appendChild(line)
    const errorEl = el('div', { class: 'card-error', hidden: true })
    const button = (action, label) =>
      el('button', {
        type: 'button',
        'data-action': action,
        'data-collector': name,
        text: label,
        onclick: (e) => {
          e.stopPropagation()
          this.onAction(name, action)
        },
      })
    const actions = el('div', { class: 'card-actions' }, button('restart', 'Restart'), button('stop', 'Stop'))
    const facts = isSupervisor
      ? el('div', { class: 'card-facts' }, el('span', {}, 'collectors ', generationEl), statusEl)
      : el(
          'div',
          { class: 'card-facts' },
          el('span', {}, 'events/s ', rateEl),
          el('span', {}, 'restarts ', restartsEl),
          el('span', { title: 'start attempts of this actor' }, 'gen ', generationEl),
          spark,
        )
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
          if (e.key === 'Enter' || e.key === ' ') this.onSelect(id)
        },
      },
      el('div', { class: 'card-head' }, el('span', { class: 'card-name', title: id }, name, isSupervisor ? el('span', { class: 'card-kind', text: 'supervisor' }) : null), stateEl),
      facts,
      isSupervisor ? null : el('div', { class: 'card-facts' }, statusEl),
      errorEl,
      isSupervisor ? null : actions,
    )
    c = { id, isSupervisor, root, stateEl, statusEl, rateEl, restartsEl, generationEl, line, errorEl, actions, rates: [], removed: false }
    actions.hidden = !this.control || isSupervisor
    this.cards.set(id, c)
    // The supervisor first, collectors in the order they appear (registration order).
    if (isSupervisor) this.list.prepend(root)
    else this.list.append(root)
    return c
  }

  setState(id, state) {
    const c = this.ensure(id)
    c.root.dataset.state = state
    c.stateEl.textContent = state
    c.stateEl.dataset.kind = stateKind(state)
  }

  setStatus(id, status, message) {
    const c = this.ensure(id)
    c.root.dataset.status = status
    c.statusEl.textContent = message ? `status ${status} (${message})` : `status ${status}`
  }

  setContext(id, ctx) {
    const c = this.ensure(id)
    if (c.isSupervisor) {
      c.generationEl.textContent = String(Array.isArray(ctx.order) ? ctx.order.length : 0)
      this.setError(c, typeof ctx.escalation === 'string' ? `escalated: ${ctx.escalation}` : null)
      return
    }
    c.restartsEl.textContent = String(ctx.restarts ?? 0)
    c.root.dataset.restarts = String(ctx.restarts ?? 0)
    c.generationEl.textContent = String(ctx.generation ?? 0)
    this.setError(c, typeof ctx.lastError === 'string' ? ctx.lastError : null)
  }

  setError(c, text) {
    c.errorEl.hidden = !text
    c.errorEl.textContent = text ? `last error: ${text}` : ''
  }

  setRate(id, rate) {
    const c = this.ensure(id)
    c.rateEl.textContent = formatRate(rate)
    c.root.dataset.rate = String(rate)
    c.rates.push(rate)
    if (c.rates.length > SPARK_POINTS) c.rates.shift()
    const max = Math.max(1, ...c.rates)
    const offset = SPARK_POINTS - c.rates.length
    c.line.setAttribute('points', c.rates.map((r, i) => `${offset + i},${(19 - (r / max) * 18).toFixed(1)}`).join(' '))
  }

  /** A collector stopped through the control API leaves the supervisor; keep its card, greyed. */
  setRemoved(id, removed) {
    const c = this.cards.get(id)
    if (!c || c.removed === removed) return
    c.removed = removed
    c.root.dataset.removed = String(removed)
    c.actions.hidden = !this.control || c.isSupervisor || removed
    if (removed) this.setStatus(id, 'stopped', 'removed from the supervisor')
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
