import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodedEventsBound, EBPF_DEFAULTS, EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { buildLoadgen, type Loadgen, Sink, startLoadgen, stats, waitFor } from './helpers.js'

const probeOnly = { exec: false, exit: false, tcp: false, oom: false, openat: false }

describe('ebpf collector: exact loss accounting', () => {
  let loadgenPath: string
  const cleanup: (() => Promise<void> | void)[] = []

  beforeAll(() => {
    loadgenPath = buildLoadgen()
  })

  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })

  async function flood(count: number, config: Record<string, unknown>, consume: boolean) {
    const gen: Loadgen = await startLoadgen(loadgenPath, count)
    cleanup.push(() => gen.kill())
    const collector = new EbpfCollector({ programs: probeOnly, probePid: gen.pid, ...config })
    await collector.start(AbortSignal.timeout(30_000))
    cleanup.push(() => collector.stop())
    const sink = consume ? new Sink(collector) : undefined
    gen.go()
    await gen.done
    // Every call has been counted in the kernel before the loadgen reports done.
    await waitFor('kernel count', () => collector.statistics().counters['generated.probe'] === count)
    return { collector, sink }
  }

  it('a flood into a one-page ring buffer: generated = delivered + dropped, exactly', async () => {
    const count = 200_000
    const { collector, sink } = await flood(count, { ringBufferBytes: 4096 }, true)
    const health = collector.health()
    expect(health.status).toBe('recoverable_error')
    expect(health.message).toMatch(/lost \d+ of \d+ kernel events/)
    await collector.stop()
    await sink?.done
    const s = stats(collector)
    expect(s.generated).toBe(count)
    expect(s.droppedKernel).toBeGreaterThan(0)
    expect(s.delivered).toBeGreaterThan(0)
    expect(s.droppedUser).toBe(0)
    expect(s.delivered + s.droppedKernel + s.droppedUser).toBe(count)
    expect(s.pending).toBe(0)
    expect(sink?.events.length).toBe(s.delivered)
    expect(sink?.events.every((e) => e.type === 'kernel.probe.hit')).toBe(true)
  })

  it('a consumer that does not read: the native side stops at its batch limit, the kernel counts the rest', async () => {
    const count = 300_000
    const { collector } = await flood(
      count,
      { ringBufferBytes: 65536, batchBytes: 16384, maxBatchesInFlight: 2 },
      false,
    )
    const s1 = stats(collector)
    // Bounded: at most 2 batches of 16 KiB (72-byte frames) wait in JavaScript.
    expect(s1.queued).toBeLessThanOrEqual(2 * Math.ceil(16384 / 56))
    expect(s1.consumerStalls).toBeGreaterThan(0)
    expect(s1.droppedKernel).toBeGreaterThan(0)
    const sink = new Sink(collector)
    await collector.stop()
    await sink.done
    const s = stats(collector)
    expect(s.generated).toBe(count)
    expect(s.delivered + s.droppedKernel + s.droppedUser).toBe(count)
    expect(s.pending).toBe(0)
    expect(sink.events.length).toBe(s.delivered)
  })

  it('with the default settings, at most decodedEventsBound events wait decoded in JavaScript', async () => {
    // What waits decoded is live heap: tens of thousands of objects at once were promoted to the
    // old generation and took the agent's peak RSS past 512 MiB (docs/performance.md).
    const bound = decodedEventsBound(EBPF_DEFAULTS)
    expect(bound).toBeLessThanOrEqual(2_400)
    const count = 300_000
    const { collector } = await flood(count, {}, false)
    const s1 = stats(collector)
    expect(s1.consumerStalls).toBeGreaterThan(0)
    expect(s1.queued).toBeGreaterThan(0)
    expect(s1.queued).toBeLessThanOrEqual(bound)
    const sink = new Sink(collector)
    await collector.stop()
    await sink.done
    const s = stats(collector)
    expect(s.generated).toBe(count)
    expect(s.delivered + s.droppedKernel + s.droppedUser).toBe(count)
    expect(s.pending).toBe(0)
  })

  it('a big enough ring loses nothing', async () => {
    const count = 200_000
    const { collector, sink } = await flood(count, { ringBufferBytes: 64 << 20 }, true)
    await collector.stop()
    await sink?.done
    const s = stats(collector)
    expect(s).toMatchObject({ generated: count, delivered: count, droppedKernel: 0, droppedUser: 0, pending: 0 })
    expect(collector.health().status).not.toBe('recoverable_error')
  })
})
