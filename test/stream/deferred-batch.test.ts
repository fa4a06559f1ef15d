/**
 * Deferred batches (the eBPF collector's kernel records) through the data plane: stamped by the
 * pump, cut and evicted by the merge buffer like arrays, objects for every public consumer, bytes
 * for the agent; accounting closes under every policy.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CgroupIdsOnly, BatchDecoder } from '../../src/collectors/ebpf/decode.js'
import { KernelBatch } from '../../src/collectors/ebpf/kernel-batch.js'
import type { Collector, CollectorOutput } from '../../src/core/collector.js'
import type { TapioEvent } from '../../src/events/event.js'
import { CollectorManager, encodedBatchesOfManager } from '../../src/manager/collector-manager.js'
import { BootClock, encodeBatch, RecordKind } from '../../src/native/bpf-records.js'
import { NdjsonBatch } from '../../src/outputs/ndjson.js'
import { enrichProcessor, filterProcessor } from '../../src/processors/builtin.js'
import { ProcessorChain } from '../../src/processors/chain.js'
import { type Batch, DEFERRED_OUTPUT, DeferredBatch, eventsOf } from '../../src/stream/deferred-batch.js'
import { MergeBuffer, type OverflowPolicy } from '../../src/stream/merge-buffer.js'
import { normalizeOutput } from '../../src/stream/pump.js'
import { record } from '../collectors/ebpf/records.js'

const clock = new BootClock([1_700_000_000, 0])
let seq = 0
/** A kernel batch of `n` probe records; `tid` carries a sequence number to check order. */
function kernelBatch(n: number): KernelBatch {
  const recs = Array.from({ length: n }, () => record(RecordKind.probe, undefined, { tgid: 1, pid: ++seq }))
  return new KernelBatch(new BatchDecoder(clock, new CgroupIdsOnly()).scan(encodeBatch(recs)))
}
const tids = (events: readonly TapioEvent[]) => events.map((e) => (e.data as { tid: number }).tid)

function linesOf(b: Batch): string[] {
  return NdjsonBatch.from(b).bytes.toString().split('\n').slice(0, -1)
}

describe('deferred batches in the merge buffer', () => {
  it('the pump stamps source and consecutive ids once; objects and bytes agree', () => {
    const buf = new MergeBuffer({ capacity: 100 })
    buf.registerSource('ebpf')
    const kb = kernelBatch(5)
    const out = normalizeOutput(buf, 'ebpf', kb)
    expect(out).toBe(kb)
    expect(kb.source).toBe('ebpf')
    const events = kb.events()
    expect(new Set(events.map((e) => e.id)).size).toBe(5)
    expect(events.every((e) => e.source === 'ebpf' && e.severity === 'debug')).toBe(true)
    expect(linesOf(kb)).toEqual(events.map((e) => JSON.stringify(e)))
    expect(normalizeOutput(buf, 'ebpf', kernelBatch(0))).toBeUndefined()
  })

  it('under every policy: the same events as arrays would give, in order, and accepted = delivered + dropped + queued', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<OverflowPolicy>('block', 'drop-newest', 'drop-oldest', 'sample'),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 5, max: 60 }),
        fc.integer({ min: 1, max: 30 }),
        fc.boolean(),
        (policy, sizes, capacity, maxBatch, takeBetween) => {
          const buf = new MergeBuffer({ capacity, maxBatch, policy, sample: { highWaterMark: 0.5, keepOneIn: 3 } })
          buf.registerSource('ebpf')
          const sub = buf.subscribe()
          const taken: TapioEvent[] = []
          const encoded: string[] = []
          const take = () => {
            for (let b = buf.takeBatch(sub); b !== undefined; b = buf.takeBatch(sub)) {
              const events = eventsOf(b)
              // A deferred piece's bytes are its objects' JSON, whatever cut it.
              expect(linesOf(b)).toEqual(events.map((e) => JSON.stringify(e)))
              taken.push(...events)
              encoded.push(...linesOf(b))
            }
          }
          let offered = 0
          for (const n of sizes) {
            const kb = normalizeOutput(buf, 'ebpf', kernelBatch(n)) as Batch
            offered += n
            void buf.offer('ebpf', kb)
            if (takeBetween) take()
          }
          take()
          const s = buf.stats()
          const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0)
          expect(s.accepted).toBe(offered)
          expect(s.accepted).toBe(s.delivered + dropped + s.queued)
          expect(taken.length).toBe(s.delivered)
          // Order kept, no event twice.
          const t = tids(taken)
          expect([...t].sort((a, b) => a - b)).toEqual(t)
          expect(new Set(taken.map((e) => e.id)).size).toBe(taken.length)
          expect(encoded).toEqual(taken.map((e) => JSON.stringify(e)))
        },
      ),
      { numRuns: 300 },
    )
  })
})

/** A collector that yields kernel batches the way the ebpf collector does (objects to `events()` readers). */
class KernelSource implements Collector {
  constructor(private readonly batches: readonly KernelBatch[]) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  events(): AsyncIterable<CollectorOutput> {
    const batches = this.batches
    return {
      [DEFERRED_OUTPUT]: async function* () {
        yield* batches
      },
      [Symbol.asyncIterator]: async function* () {
        for (const b of batches) yield b.events()
      },
    } as AsyncIterable<CollectorOutput>
  }
}

describe('deferred batches through the manager', () => {
  it('batches() and events() give objects; encodedBatchesOfManager() gives the batch itself; both see every event', async () => {
    const mgr = new CollectorManager()
    mgr.addCollector('kern', new KernelSource([kernelBatch(3), kernelBatch(4)]), { restart: 'temporary' })
    const plain = mgr.batches()
    const encoded = encodedBatchesOfManager(mgr)
    await mgr.start()
    const objects: TapioEvent[] = []
    for (let n = 0; n < 7; ) {
      const r = await plain.next()
      expect(Array.isArray(r.value)).toBe(true)
      objects.push(...(r.value as readonly TapioEvent[]))
      n = objects.length
    }
    const raw: Batch[] = []
    for (let n = 0; n < 7; ) {
      const r = await encoded.next()
      raw.push(r.value as Batch)
      n = raw.reduce((a, b) => a + b.length, 0)
    }
    expect(raw.every((b) => b instanceof DeferredBatch)).toBe(true)
    // Both subscriptions read the same events: the same objects, made once.
    expect(raw.flatMap((b) => [...eventsOf(b)])).toEqual(objects)
    expect(objects.every((e) => e.source === 'kern')).toBe(true)
    await plain.return?.()
    await encoded.return?.()
    await mgr.stop()
    const st = mgr.statistics().collectors.kern
    expect(st?.accepted).toBe(7)
    expect(st?.delivered).toBe(7)
  })
})

describe('deferred batches through the processor stage', () => {
  it('stays encoded through processors that pass it unread; objects for the first that reads; counts either way', () => {
    const kb = kernelBatch(6)
    kb.stamp('ebpf')
    const passing = new ProcessorChain([enrichProcessor(undefined)])
    const r1 = passing.runBatch(kb)
    expect(r1.events).toBe(kb)
    expect(passing.statistics().sources.ebpf).toEqual({ received: 6, emitted: 0, delivered: 6, dropped: {} })

    // A filter reads events: it gets objects, and what it removes is counted.
    const mid = tids(kb.events())[2] as number
    const odd = new ProcessorChain([enrichProcessor(undefined), filterProcessor({ name: 'odd', exclude: { where: `data.tid > ${mid}` } })])
    const r2 = odd.runBatch(kb)
    expect(Array.isArray(r2.events)).toBe(true)
    expect(tids(eventsOf(r2.events))).toEqual(tids(kb.events()).slice(0, 3))
    expect(odd.statistics().sources.ebpf).toEqual({ received: 6, emitted: 0, delivered: 3, dropped: { odd: 3 } })
    // Its output is another array: serialised from those objects, never the batch's stale bytes.
    expect(NdjsonBatch.from(r2.events).lines).toEqual(eventsOf(r2.events).map((e) => JSON.stringify(e)))
    // A filter that keeps everything passes the very array the batch materialised: its bytes are reused.
    const all = new ProcessorChain([filterProcessor({ name: 'none', exclude: { types: ['nothing'] } })])
    const r3 = all.runBatch(kb)
    expect(r3.events).toBe(kb.events())
    expect(NdjsonBatch.from(r3.events).bytes).toBe(kb.ndjson().bytes)
  })
})
