import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import type { Collector } from '../../../src/core/collector.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'

// Real BPF programs in the running kernel; a process run makes them produce.
const subject = {
  name: 'ebpf',
  factory: () => new EbpfCollector({ programs: { tcp: false, oom: false }, ringBufferBytes: 1 << 16 }),
  produce: () => {
    execFileSync('/bin/true')
  },
}

const ringFull = (c: Collector) => c.statistics?.().dropped.kernel_ring_full ?? 0

/**
 * The ebpf collector never fails mid-stream from a fault outside it: the ring buffer is shared
 * memory, and what it cannot take is lost in the kernel and counted (`kernel_ring_full`), not
 * fatal (its one fatal path, libbpf's consume failing 100 times in a row, nothing outside can
 * cause). So its fault case is the one that happens in production: the consumer stalls (a busy
 * event loop) while processes keep starting, the smallest ring (4 KiB) with one batch in flight
 * overflows, then the consumer resumes. Repeated until the kernel has counted a loss.
 */
async function stallWhileTheKernelProduces(c: Collector): Promise<void> {
  const before = ringFull(c)
  for (let attempt = 0; attempt < 10 && ringFull(c) === before; attempt++) {
    // The child forks now (libuv spawns synchronously) and runs while this thread is busy.
    const child = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' })
    const exited = once(child, 'exit')
    const until = Date.now() + 500
    while (Date.now() < until) {
      // The consumer stalls: no batch is taken, so the native side stops reading the ring.
    }
    await exited
  }
  if (ringFull(c) === before) throw new Error('the kernel ring never overflowed while the consumer stalled')
}

describe('ebpf collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  const stalling = conformanceCases({
    ...subject,
    factory: () => new EbpfCollector({ programs: { tcp: false, oom: false }, ringBufferBytes: 4096, maxBatchesInFlight: 1 }),
    survive: { inject: stallWhileTheKernelProduces },
  })
  const rideOut = stalling.find((c) => c.name.includes('fault mid-stream is ridden out'))
  it('ebpf (4 KiB ring, one batch in flight): a consumer stall that overflows the kernel ring is ridden out', async () => {
    expect(rideOut).toBeDefined()
    await rideOut?.run()
  })

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })
})
