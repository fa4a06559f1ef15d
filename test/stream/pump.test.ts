import * as Stream from 'effect/Stream'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { flushMicrotasks } from '../../src/core/clock.js'
import type { EventInput, TapioEvent } from '../../src/events/event.js'
import { MergeBuffer } from '../../src/stream/merge-buffer.js'
import { DEFERRED_OUTPUT, deferredOutputOf } from '../../src/stream/deferred-batch.js'
import { normalizeOutput, startPump } from '../../src/stream/pump.js'

function input(i: number): EventInput {
  return { type: 'synthetic.tick', data: { seq: i } }
}

function buffer(options: ConstructorParameters<typeof MergeBuffer>[0] = {}): MergeBuffer {
  const b = new MergeBuffer({ capacity: 100, maxBatch: 100, ...options })
  b.registerSource('src')
  return b
}

function invalid(b: MergeBuffer): number {
  return b.sourceCounters('src')?.dropped.invalid ?? -1
}

function takeAll(b: MergeBuffer): TapioEvent[] {
  const sub = b.subscribe()
  const out: TapioEvent[] = []
  for (let batch = b.take(sub); batch !== undefined; batch = b.take(sub)) out.push(...batch)
  b.unsubscribe(sub)
  return out
}

/** Anything a collector might yield that is not an event. */
const notAnEvent = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer(),
  fc.string(),
  fc.record({ type: fc.oneof(fc.integer(), fc.constant(null), fc.boolean()) }),
  fc.constant({}),
)

describe('normalizeOutput', () => {
  it('keeps an all-event array as it is (no copy), stamping each event with the source', () => {
    const b = buffer()
    const arr = [input(1), input(2), input(3)]
    const out = normalizeOutput(b, 'src', arr)
    expect(out).toBe(arr)
    for (const e of out ?? []) {
      expect(e.source).toBe('src')
      expect(typeof e.id).toBe('string')
      expect(e.severity).toBe('info')
    }
    expect(invalid(b)).toBe(0)
  })

  it('leaves the non-events of an array out, counting each invalid, and keeps the events in order', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(1000).map(input), notAnEvent), { maxLength: 30 }), (items) => {
        const b = buffer()
        const events = items.filter((x): x is EventInput => typeof x === 'object' && x !== null && typeof (x as EventInput).type === 'string')
        const bad = items.length - events.length
        const out = normalizeOutput(b, 'src', items as EventInput[])
        expect(invalid(b)).toBe(bad)
        if (bad === 0) expect(out).toBe(items)
        else if (events.length === 0) expect(out).toBeUndefined()
        else expect(out).toEqual(events)
        for (const e of out ?? []) expect(e.source).toBe('src')
      }),
    )
  })

  it('wraps a single event in a batch; a single non-event is counted invalid', () => {
    const b = buffer()
    const e = input(7)
    const out = normalizeOutput(b, 'src', e)
    expect(out).toEqual([e])
    expect(out?.[0]).toBe(e)
    expect(e).toMatchObject({ source: 'src' })
    expect(invalid(b)).toBe(0)
    expect(normalizeOutput(b, 'src', null as unknown as EventInput)).toBeUndefined()
    expect(normalizeOutput(b, 'src', { type: 3 } as unknown as EventInput)).toBeUndefined()
    expect(normalizeOutput(b, 'src', 'synthetic.tick' as unknown as EventInput)).toBeUndefined()
    expect(invalid(b)).toBe(3)
  })
})

describe('startPump', () => {
  it('offers every batch of an Effect stream and ends', async () => {
    const b = buffer()
    const pump = startPump(b, 'src', Stream.make([input(0), input(1)], input(2), 'junk' as unknown as EventInput))
    expect(await pump.done).toEqual({ kind: 'ended' })
    expect(takeAll(b).map((e) => (e.data as { seq: number }).seq)).toEqual([0, 1, 2])
    expect(invalid(b)).toBe(1)
  })

  it('reads an async iterable the same way', async () => {
    const b = buffer()
    async function* source() {
      yield [input(0)]
      yield input(1)
    }
    const pump = startPump(b, 'src', source())
    expect(await pump.done).toEqual({ kind: 'ended' })
    expect(takeAll(b)).toHaveLength(2)
  })

  it('reports how the source failed: the error message, the error name when it has none, or the value', async () => {
    const b = buffer()
    const failing = (err: unknown) =>
      (async function* () {
        yield input(0)
        throw err
      })()
    expect(await startPump(b, 'src', failing(new Error('boom'))).done).toEqual({ kind: 'failed', error: 'boom' })
    expect(await startPump(b, 'src', failing(new TypeError())).done).toEqual({ kind: 'failed', error: 'TypeError' })
    expect(await startPump(b, 'src', Stream.fail('text failure')).done).toEqual({ kind: 'failed', error: 'text failure' })
    expect(await startPump(b, 'src', Stream.die(new RangeError('defect'))).done).toEqual({ kind: 'failed', error: 'defect' })
    expect(takeAll(b)).toHaveLength(2)
  })

  it('waits for admission under block (backpressure): the next batch is read only after the first is in', async () => {
    const b = buffer({ policy: 'block', capacity: 2 })
    let read = 0
    async function* source() {
      for (let i = 0; i < 3; i++) {
        read += 1
        yield [input(2 * i), input(2 * i + 1)]
      }
    }
    const pump = startPump(b, 'src', source())
    await flushMicrotasks()
    // The first batch filled the buffer, the second waits for room: the third is not read yet.
    expect(read).toBe(2)
    expect(b.stats().pendingOffers).toBe(1)
    const sub = b.subscribe()
    const seen: number[] = []
    while (seen.length < 6) {
      const batch = b.take(sub)
      if (batch) seen.push(...batch.map((e) => (e.data as { seq: number }).seq))
      else await flushMicrotasks()
    }
    expect(await pump.done).toEqual({ kind: 'ended' })
    expect(seen).toEqual([0, 1, 2, 3, 4, 5])
  })

  it('interrupt withdraws a blocked offer, counted shutdown, and ends the pump as interrupted', async () => {
    const b = buffer({ policy: 'block', capacity: 2 })
    let finalized = false
    async function* source() {
      try {
        for (let i = 0; ; i++) yield [input(2 * i), input(2 * i + 1), input(2 * i + 2)]
      } finally {
        finalized = true
      }
    }
    const pump = startPump(b, 'src', source())
    await flushMicrotasks()
    // 3 events into capacity 2: the first 2 are in, the third waits.
    expect(b.stats()).toMatchObject({ pendingOffers: 1, queued: 2 })
    await pump.interrupt()
    expect(await pump.done).toEqual({ kind: 'interrupted' })
    expect(b.stats().pendingOffers).toBe(0)
    expect(b.sourceCounters('src')).toMatchObject({ accepted: 3, buffered: 2, dropped: { shutdown: 1 } })
    expect(finalized).toBe(true)
  })
})

describe('deferredOutputOf', () => {
  it('finds a collector output\'s deferred form, called on the output itself; anything else has none', () => {
    async function* none() {}
    const output = {
      tag: 'mine',
      [DEFERRED_OUTPUT](this: { tag: string }) {
        expect(this.tag).toBe('mine')
        return none()
      },
    }
    expect(deferredOutputOf(output)).toBeDefined()
    for (const x of [null, undefined, 42, 'text', {}, { [DEFERRED_OUTPUT]: 'not a function' }, none()]) expect(deferredOutputOf(x)).toBeUndefined()
  })
})
