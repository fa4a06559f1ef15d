import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/core/clock.js'
import { makeEvent } from '../../../src/events/event.js'
import { NatsOutput, parseNatsOutputConfig } from '../../../src/outputs/nats/index.js'
import { freePort } from './nats-server.js'

/**
 * The output's timers run on the clock it is given: with NATS unreachable (a port nobody listens
 * on), close() waits exactly closeTimeoutMs of that clock for acknowledgements, then counts what
 * is left as `shutdown`, and leaves no timer of that clock behind (tick, connect backoff).
 */
describe('NATS output on a driven clock', () => {
  it('close() is bounded by closeTimeoutMs of its clock, not a millisecond less; a second close() is the same', async () => {
    const clock = new ManualClock(0)
    const port = await freePort()
    const cfg = parseNatsOutputConfig({ servers: [`nats://127.0.0.1:${port}`], closeTimeoutMs: 10_000, retry: { initialMs: 100, maxMs: 1000 } })
    const out = new NatsOutput(cfg, { node: 'n1', clock })
    out.start()
    expect(out.write(Array.from({ length: 10 }, (_, i) => makeEvent('s', 'test.thing', { i })))).toBeUndefined()
    let closed = false
    const closing = out.close().then(() => {
      closed = true
    })
    expect(out.statistics().connection.phase).toBe('closing')
    // A second close() is the same close: it ends with the first.
    let again = false
    const second = out.close().then(() => {
      again = true
    })
    await clock.advanceAsync(9_999)
    expect(closed).toBe(false)
    expect(again).toBe(false)
    expect(out.statistics().pendingEvents).toBe(10)
    await clock.advanceAsync(1)
    await Promise.all([closing, second])
    expect(out.statistics()).toMatchObject({ pendingEvents: 0, failedEvents: { shutdown: 10, total: 10 }, connection: { phase: 'closed' } })
    expect(clock.pending).toBe(0)
  })
})
