import type { TapioEvent } from '../events/event.js'

/** One sampled event as the page shows it: the envelope, and the data cut to a preview. */
export interface SampledEvent {
  readonly id: string
  readonly timestamp: string
  readonly type: string
  readonly severity: string
  readonly data: string
}

const DATA_PREVIEW = 240

function preview(e: TapioEvent): SampledEvent {
  let data: string
  try {
    data = JSON.stringify(e.data) ?? ''
  } catch {
    data = '(not serialisable)'
  }
  if (data.length > DATA_PREVIEW) data = `${data.slice(0, DATA_PREVIEW - 1)}…`
  return { id: e.id, timestamp: e.timestamp, type: e.type, severity: e.severity, data }
}

interface Slot {
  watchers: number
  /** Newest last; references only (events are not changed after delivery). */
  latest: TapioEvent[]
  fresh: boolean
}

/** Events `observe` may look at per window: its cost has a ceiling whatever the event rate. */
const SCAN_BUDGET = 20_000
const WINDOW_MS = 100

/**
 * The most recent events of the collectors someone is watching, taken from the batches the
 * consumer already has in hand: no subscription of its own, so it can never hold the stream up.
 * With nobody watching, `observe` returns at once; otherwise it looks at a batch from its end,
 * stops as soon as every watched collector has its `perSource` newest events, and looks at no
 * more than 20,000 events per 100 ms in all (at most 200,000 map lookups a second, whatever the
 * rate: a sample of a busy stream, every event of a quiet one).
 */
export class EventSampler {
  private readonly slots = new Map<string, Slot>()
  private budget = SCAN_BUDGET
  private windowStart = Number.NEGATIVE_INFINITY

  constructor(
    readonly perSource = 8,
    private readonly now: () => number = Date.now,
  ) {}

  /** Start sampling `source`; the returned function stops (watchers are counted). */
  watch(source: string): () => void {
    let slot = this.slots.get(source)
    if (!slot) {
      slot = { watchers: 0, latest: [], fresh: false }
      this.slots.set(source, slot)
    }
    slot.watchers += 1
    let done = false
    return () => {
      if (done) return
      done = true
      const s = this.slots.get(source)
      if (s && --s.watchers === 0) this.slots.delete(source)
    }
  }

  get watching(): number {
    return this.slots.size
  }

  observe(batch: readonly TapioEvent[]): void {
    if (this.slots.size === 0 || batch.length === 0) return
    const now = this.now()
    if (now - this.windowStart >= WINDOW_MS) {
      this.windowStart = now
      this.budget = SCAN_BUDGET
    }
    if (this.budget <= 0) return
    const need = this.perSource
    let open = this.slots.size
    const took = new Map<Slot, TapioEvent[]>()
    const stop = Math.max(0, batch.length - this.budget)
    this.budget -= batch.length - stop
    for (let i = batch.length - 1; i >= stop && open > 0; i--) {
      const e = batch[i] as TapioEvent
      const slot = this.slots.get(e.source)
      if (!slot) continue
      let list = took.get(slot)
      if (!list) {
        list = []
        took.set(slot, list)
      }
      if (list.length < need) {
        list.push(e)
        if (list.length === need) open -= 1
      }
    }
    for (const [slot, list] of took) {
      list.reverse()
      slot.latest = list.length >= need ? list : [...slot.latest, ...list].slice(-need)
      slot.fresh = true
    }
  }

  /** The newest events of `source` as previews; `fresh` when some arrived since the last call. */
  take(source: string): { readonly events: SampledEvent[]; readonly fresh: boolean } {
    const slot = this.slots.get(source)
    if (!slot) return { events: [], fresh: false }
    const fresh = slot.fresh
    slot.fresh = false
    return { events: slot.latest.map(preview), fresh }
  }
}
