import type { EventInput, TapioEvent } from '../../events/event.js'
import { eventIdPrefix, reserveEventIds } from '../../events/id.js'
import { DeferredBatch, type EncodedLines, rememberMaterialised } from '../../stream/deferred-batch.js'
import { EventMaker, type ScannedRecords } from './decode.js'
import { renderNdjson } from './render.js'

/** Objects are made on the JavaScript thread only, one batch at a time: one comm cache serves all. */
const maker = new EventMaker()

/**
 * Kernel records of one native batch (or a run of them), kept as bytes: events `from` to `to` of
 * the scan. The data plane carries it whole; its events become objects (`events()`) or NDJSON
 * (`ndjson()`) only when a consumer asks, each once, both from the same scan, ids and source.
 */
export class KernelBatch extends DeferredBatch {
  readonly length: number
  private sourceName: string | undefined
  /** The id counter of event `from`; -1 until stamped. */
  private firstId = -1
  private objects: readonly TapioEvent[] | undefined
  private lines: EncodedLines | undefined

  constructor(
    private readonly scan: ScannedRecords,
    private readonly from = 0,
    private readonly to = scan.count,
  ) {
    super()
    this.length = to - from
  }

  get source(): string | undefined {
    return this.sourceName
  }

  stamp(source: string): void {
    if (this.firstId >= 0) throw new Error('kernel batch: stamped twice')
    this.sourceName = source
    this.firstId = reserveEventIds(this.length)
  }

  events(): readonly TapioEvent[] {
    if (this.objects === undefined) {
      const made = maker.make(this.scan, this.from, this.to)
      if (this.firstId >= 0) {
        const prefix = `${eventIdPrefix()}-`
        const source = this.sourceName as string
        for (let i = 0; i < made.length; i++) {
          // The keys stampEvent adds, in its order: the object equals what the pump would make.
          const e = made[i] as { -readonly [K in keyof EventInput]: EventInput[K] }
          e.id = prefix + (this.firstId + i).toString(36)
          e.source = source
        }
        // Only a stamped batch's bytes are the NDJSON of these objects.
        rememberMaterialised(made as readonly TapioEvent[], this)
      }
      this.objects = made as readonly TapioEvent[]
    }
    return this.objects
  }

  ndjson(): EncodedLines {
    this.lines ??= renderNdjson(this.scan, this.from, this.to, this.firstId, this.sourceName)
    return this.lines
  }

  slice(from = 0, to: number = this.length): KernelBatch {
    const a = clamp(from, this.length)
    const b = Math.max(a, clamp(to, this.length))
    const part = new KernelBatch(this.scan, this.from + a, this.from + b)
    if (this.firstId >= 0) {
      part.sourceName = this.sourceName
      part.firstId = this.firstId + a
    }
    return part
  }
}

function clamp(i: number, n: number): number {
  return i < 0 ? Math.max(0, n + i) : Math.min(i, n)
}
