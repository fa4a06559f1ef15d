import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { ManualClock } from '../../../src/core/clock.js'
import { buildLoadgen, type Loadgen, Sink, startLoadgen, waitFor } from './helpers.js'

const probeOnly = { exec: false, exit: false, tcp: false, oom: false, openat: false }
const WINDOW = 10_000

describe('ebpf collector on a driven clock: the loss window', () => {
  let loadgenPath: string
  const cleanup: (() => Promise<void> | void)[] = []

  beforeAll(() => {
    loadgenPath = buildLoadgen()
  })

  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })

  it('reports real kernel loss until exactly one loss window after the last sample that saw it', async () => {
    const count = 200_000
    const gen: Loadgen = await startLoadgen(loadgenPath, count)
    cleanup.push(() => gen.kill())
    const clock = new ManualClock(1_000_000)
    const collector = new EbpfCollector({ programs: probeOnly, probePid: gen.pid, ringBufferBytes: 4096, loss: { windowMs: WINDOW } }, { clock })
    await collector.start(AbortSignal.timeout(30_000))
    cleanup.push(() => collector.stop())
    const sink = new Sink(collector)
    gen.go()
    await gen.done
    await waitFor('kernel count', () => collector.statistics().counters['generated.probe'] === count)
    expect(collector.statistics().dropped.kernel_ring_full).toBeGreaterThan(0)
    // No clock time has passed: the whole flood is measured against the start sample.
    expect(collector.health().status).toBe('recoverable_error')
    // One second on: a sample is kept holding every loss so far.
    await clock.advanceAsync(1_000)
    expect(collector.health().status).toBe('recoverable_error')
    // The start sample stays the base until the sample after it is a full window old...
    await clock.advanceAsync(WINDOW - 1)
    expect(collector.health().status).toBe('recoverable_error')
    // ...one millisecond later it leaves: measured from the second sample, nothing was lost.
    await clock.advanceAsync(1)
    const h = collector.health()
    expect(h.status).toBe('ok')
    expect(h.details?.lossRatio).toBe(0)
    await collector.stop()
    await sink.done
    expect(sink.events.length).toBeGreaterThan(0)
  })
})
