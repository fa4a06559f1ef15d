import * as Cause from 'effect/Cause'
import * as Effect from 'effect/Effect'
import * as Exit from 'effect/Exit'
import * as Stream from 'effect/Stream'
import { describe, expect, it } from 'vitest'
import { flushMicrotasks } from '../../src/core/clock.js'
import type { TapioEvent } from '../../src/events/event.js'
import { batchesOf, eventsOf, streamOf } from '../../src/stream/consumers.js'
import { MergeBuffer, type Subscription } from '../../src/stream/merge-buffer.js'

function events(from: number, n: number): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `e${from + i}`,
    timestamp: '1',
    type: 'synthetic.tick',
    source: 'src',
    severity: 'info',
    data: { seq: from + i },
  })) as TapioEvent[]
}

const seqs = (es: readonly TapioEvent[]) => es.map((e) => (e.data as { seq: number }).seq)

function buffer(): MergeBuffer {
  const b = new MergeBuffer({ capacity: 100, maxBatch: 100 })
  b.registerSource('src')
  return b
}

/**
 * A buffer stand-in that hands out the given batches in turn (an empty one included), then says it
 * is exhausted; it records unsubscriptions. Only what the consumers call.
 */
function scripted(batches: (readonly TapioEvent[] | Error)[]) {
  const queue = [...batches]
  const log = { unsubscribed: 0, takes: 0 }
  const fake = {
    subscribe: () => ({ id: 1 }) as unknown as Subscription,
    unsubscribe: () => {
      log.unsubscribed += 1
    },
    take: () => {
      log.takes += 1
      const b = queue.shift()
      if (b instanceof Error) throw b
      return b
    },
    exhausted: () => queue.length === 0,
    whenData: () => Promise.resolve(),
  }
  return { buffer: fake as unknown as MergeBuffer, log }
}

describe('batchesOf', () => {
  it('is its own iterator; subscribes at the call, waits for data, completes when closed and drained', async () => {
    const b = buffer()
    const it = batchesOf(b)
    expect(it[Symbol.asyncIterator]()).toBe(it)
    expect(b.stats().subscriptions).toBe(1)
    const first = it.next()
    let settled = false
    void first.then(() => (settled = true))
    await flushMicrotasks()
    expect(settled).toBe(false)
    b.offer('src', events(0, 2))
    expect(seqs((await first).value as TapioEvent[])).toEqual([0, 1])
    b.offer('src', events(2, 1))
    b.close()
    expect(seqs((await it.next()).value as TapioEvent[])).toEqual([2])
    expect(await it.next()).toEqual({ done: true, value: undefined })
    expect(b.stats().subscriptions).toBe(0)
    expect(await it.next()).toEqual({ done: true, value: undefined })
  })

  it('return() unsubscribes at once; nothing more is read after it', async () => {
    const b = buffer()
    const it = batchesOf(b)
    b.offer('src', events(0, 1))
    expect(await it.return?.()).toEqual({ done: true, value: undefined })
    expect(b.stats().subscriptions).toBe(0)
    expect(await it.next()).toEqual({ done: true, value: undefined })
    expect(b.stats().queued).toBe(1)
  })

  it('unsubscribes once however often it is finished', async () => {
    const { buffer: fake, log } = scripted([events(0, 1)])
    const it = batchesOf(fake)
    expect((await it.next()).done).toBe(false)
    expect(await it.next()).toEqual({ done: true, value: undefined })
    await it.return?.()
    await it.next()
    expect(log.unsubscribed).toBe(1)
  })
})

describe('eventsOf', () => {
  it('yields single events in order across batches, waiting for data, and completes when closed and drained', async () => {
    const b = buffer()
    const it = eventsOf(b)
    expect(it[Symbol.asyncIterator]()).toBe(it)
    const first = it.next()
    b.offer('src', events(0, 3))
    const got: number[] = [((await first).value as TapioEvent).data.seq as number]
    b.offer('src', events(3, 2))
    b.close()
    for (let r = await it.next(); !r.done; r = await it.next()) got.push((r.value as TapioEvent).data.seq as number)
    expect(got).toEqual([0, 1, 2, 3, 4])
    expect(b.stats().subscriptions).toBe(0)
    expect(await it.next()).toEqual({ done: true, value: undefined })
  })

  it('answers from the current batch at once (fast path), reading the next batch only when it is used up', async () => {
    const b = buffer()
    const it = eventsOf(b)
    b.offer('src', events(0, 2))
    b.offer('src', events(2, 2))
    const got: number[] = []
    for (let i = 0; i < 4; i++) got.push(((await it.next()).value as TapioEvent).data.seq as number)
    expect(got).toEqual([0, 1, 2, 3])
    expect(b.stats().delivered).toBe(4)
  })

  it('skips empty batches, in the fast path and the slow one', async () => {
    const { buffer: fake, log } = scripted([[], events(0, 1), [], [], events(1, 2)])
    const got: number[] = []
    for await (const e of eventsOf(fake)) got.push(e.data.seq as number)
    expect(got).toEqual([0, 1, 2])
    expect(log.unsubscribed).toBe(1)
  })

  it('return() drops the current batch and unsubscribes once', async () => {
    const { buffer: fake, log } = scripted([events(0, 3), events(3, 1)])
    const it = eventsOf(fake)
    expect(((await it.next()).value as TapioEvent).data.seq).toBe(0)
    expect(await it.return?.()).toEqual({ done: true, value: undefined })
    expect(await it.next()).toEqual({ done: true, value: undefined })
    await it.return?.()
    expect(log.unsubscribed).toBe(1)
    expect(log.takes).toBe(1)
  })

  it('a finished iterator takes nothing more, even with data waiting', async () => {
    const b = buffer()
    const it = eventsOf(b)
    await it.return?.()
    b.offer('src', events(0, 1))
    expect(await it.next()).toEqual({ done: true, value: undefined })
    expect(b.stats().delivered).toBe(0)
  })
})

describe('streamOf', () => {
  it('flattens the batches into events and ends when the buffer is closed and drained', async () => {
    const b = buffer()
    b.offer('src', events(0, 2))
    b.offer('src', events(2, 3))
    b.close()
    const out = await Effect.runPromise(Stream.runCollect(streamOf(b)))
    expect(seqs(out)).toEqual([0, 1, 2, 3, 4])
    expect(b.stats().subscriptions).toBe(0)
  })

  it('subscribes when run, not when made: batches delivered before are not its', async () => {
    const b = buffer()
    const stream = streamOf(b)
    expect(b.stats().subscriptions).toBe(0)
    const other = b.subscribe()
    b.offer('src', events(0, 2))
    expect(b.take(other)).toHaveLength(2)
    b.offer('src', events(2, 1))
    b.close()
    const out = await Effect.runPromise(Stream.runCollect(stream))
    expect(seqs(out)).toEqual([2])
  })

  it('skips empty batches', async () => {
    const { buffer: fake } = scripted([[], events(0, 1), []])
    const out = await Effect.runPromise(Stream.runCollect(streamOf(fake)))
    expect(seqs(out)).toEqual([0])
  })

  it('a failure reading the buffer is a defect carrying the error', async () => {
    const boom = new Error('take failed')
    const { buffer: fake } = scripted([events(0, 1), boom])
    const exit = await Effect.runPromiseExit(Stream.runCollect(streamOf(fake)))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      expect(Cause.hasDies(exit.cause)).toBe(true)
      expect(Cause.squash(exit.cause)).toBe(boom)
    }
  })
})
