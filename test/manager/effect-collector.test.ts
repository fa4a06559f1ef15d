import { Effect, Stream } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import { CollectorManager, effectCollector, type EventInput, type TapioEvent } from '../../src/index.js'
import { waitFor } from '../support/wait.js'

const managers: CollectorManager[] = []
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()))
})

describe('effectCollector', () => {
  it('acquires in a scope at start, releases it at stop, and streams its events', async () => {
    const log: string[] = []
    const acquire = Effect.acquireRelease(
      Effect.sync(() => log.push('acquired')),
      () => Effect.sync(() => log.push('released')),
    ).pipe(Effect.asVoid)
    const events = Stream.fromIterable<EventInput>(Array.from({ length: 100 }, (_, i) => ({ type: 'fx.tick', data: { i } }))).pipe(
      Stream.concat(Stream.never),
    )
    const mgr = new CollectorManager()
    managers.push(mgr)
    mgr.addCollector('fx', effectCollector({ acquire, events }))
    await mgr.start()
    const got: TapioEvent[] = []
    for await (const e of mgr.events()) {
      got.push(e)
      if (got.length === 100) break
    }
    expect(got.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(log).toEqual(['acquired'])
    await mgr.stop()
    expect(log).toEqual(['acquired', 'released'])
  })

  it('a failing Effect stream is a collector failure: the supervisor restarts it', async () => {
    let starts = 0
    const mgr = new CollectorManager()
    managers.push(mgr)
    mgr.addCollector(
      'fx',
      () => {
        starts += 1
        const n = starts
        return effectCollector({
          events: n === 1 ? Stream.fail(new Error('upstream gone')) : Stream.never,
        })
      },
      { backoff: { initialMs: 5, jitter: 0 } },
    )
    await mgr.start()
    await waitFor(() => starts === 2 && mgr.health().collectors.fx?.status === 'ok', 'restart after the stream failed')
    expect(mgr.statistics().collectors.fx?.restarts).toBe(1)
  })
})
