import { afterAll, describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/core/clock.js'
import { consumeEvents } from '../../../src/outputs/nats/index.js'
import { NatsServer } from './nats-server.js'

/**
 * A reader started before any agent created the stream waits for it, retrying on its clock
 * (100 ms, doubling to 5 s): the server and its "stream not found" are real, the waits virtual.
 */
describe('NATS consumer on a driven clock', () => {
  let server: NatsServer | undefined

  afterAll(async () => {
    await server?.destroy()
  })

  it('retries a missing stream after 100, 200, 400 ms of its clock, and not a millisecond sooner', async () => {
    server = await NatsServer.start({ name: 'consumer-clock' })
    const clock = new ManualClock(0)
    const stop = new AbortController()
    const consumer = consumeEvents({ servers: [server.url], durable: 'clocked', stream: 'NO_SUCH_STREAM', signal: stop.signal, clock })
    const reading = (async () => {
      for await (const _ of consumer) throw new Error('no stream, so no event')
    })()
    try {
      let at = 0
      for (const wait of [100, 200, 400]) {
        const deadline = Date.now() + 20_000
        // The attempt (real) fails with "stream not found"; the reader then waits on the clock.
        while (clock.nextDue() !== at + wait) {
          if (Date.now() > deadline) throw new Error(`no retry timer at ${at + wait} (next due ${clock.nextDue()}, waiting: ${consumer.statistics().waiting})`)
          await new Promise((r) => setTimeout(r, 20))
        }
        expect(consumer.statistics().waiting).toMatch(/retrying/)
        await clock.advanceAsync(wait - 1)
        expect(clock.nextDue()).toBe(at + wait)
        await clock.advanceAsync(1)
        at += wait
      }
    } finally {
      stop.abort()
      await clock.advanceAsync(10_000)
      await reading
    }
    expect(clock.pending).toBe(0)
  })
})
