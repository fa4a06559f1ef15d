import { el, stateKind, timeOf } from './util.js'

const MAX_ROWS = 2000

/** The transition log: newest first, filtered by every word typed into the search box. */
export class TransitionLog {
  constructor({ body, search, count, empty }) {
    this.body = body
    this.search = search
    this.count = count
    this.empty = empty
    this.terms = []
    search.addEventListener('input', () => this.applyFilter())
  }

  reset(records) {
    this.body.replaceChildren()
    for (const r of records) this.add(r, false)
    this.applyFilter()
  }

  add(rec, fresh = true) {
    const row = el(
      'tr',
      {
        class: fresh ? 'fresh' : undefined,
        'data-seq': rec.seq,
        'data-actor': rec.actor,
        'data-from': rec.from ?? '',
        'data-to': rec.to,
        'data-event': rec.event,
        'data-label': rec.label ?? rec.event,
      },
      el('td', { class: 'muted', text: String(rec.seq) }),
      el('td', { class: 'muted', text: timeOf(rec.time) }),
      el('td', { text: rec.actor }),
      el('td', { 'data-kind': stateKind(rec.from), text: rec.from ?? '(new)' }),
      el('td', { class: 'arrow', text: '→' }),
      el('td', { 'data-kind': stateKind(rec.to), text: rec.to }),
      el(
        'td',
        { class: 'event', title: rec.event },
        el('span', { class: 'event-label', text: rec.label ?? rec.event }),
        rec.detail ? el('span', { class: 'event-detail', text: rec.detail }) : null,
      ),
    )
    row.dataset.text = `${rec.actor} ${rec.from ?? ''} ${rec.to} ${rec.label ?? ''} ${rec.detail ?? ''} ${rec.event}`.toLowerCase()
    row.hidden = !this.matches(row)
    this.body.prepend(row)
    while (this.body.childElementCount > MAX_ROWS) this.body.lastElementChild.remove()
    this.updateCount()
  }

  matches(row) {
    return this.terms.every((t) => row.dataset.text.includes(t))
  }

  applyFilter() {
    this.terms = this.search.value.toLowerCase().split(/\s+/).filter(Boolean)
    for (const row of this.body.children) row.hidden = !this.matches(row)
    this.updateCount()
  }

  updateCount() {
    const total = this.body.childElementCount
    let shown = 0
    for (const row of this.body.children) if (!row.hidden) shown++
    this.count.textContent = this.terms.length > 0 ? `${shown} of ${total}` : `${total}`
    this.empty.hidden = !(total > 0 && shown === 0)
  }
}
