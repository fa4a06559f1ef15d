import type { TapioEvent } from '../events/event.js'

/**
 * A batch whose events are kept in the source's own compact form (the eBPF collector: the kernel
 * records as they came from the ring) and become objects or NDJSON bytes only when someone asks,
 * each at most once. The data plane moves it whole like an array of events (it needs only
 * `length` and `slice`); every public consumer (`events()`, `batches()`, `stream`) receives the
 * objects, and the agent's outputs write the bytes without any object being made.
 *
 * Both forms are made from the same inputs (fixed when the batch was made, plus the ids and the
 * source the pump stamps), so `ndjson()` line `i` is `JSON.stringify(events()[i])` — a property
 * each implementation must prove with a differential test.
 */
export abstract class DeferredBatch {
  abstract readonly length: number
  /** The registered name of the collector, once the pump stamped the batch. */
  abstract readonly source: string | undefined
  /**
   * The pump's stamp: the registered name and `length` consecutive event ids. Called once, before
   * the batch is in the buffer (nobody else can see it yet).
   */
  abstract stamp(source: string): void
  /** The events as objects: made once, then shared (read-only, as every event from the buffer). */
  abstract events(): readonly TapioEvent[]
  /** NDJSON of the events (one line each, `\n`-terminated) and where line `i` starts; made once. */
  abstract ndjson(): EncodedLines
  /** Events `from` to `to` (exclusive) as a batch of the same kind, keeping their ids. */
  abstract slice(from?: number, to?: number): DeferredBatch
}

export interface EncodedLines {
  readonly bytes: Buffer
  /** `offsets[i]` is where line `i` starts; `offsets[length]` is the end. */
  readonly offsets: Uint32Array
}

/** What the data plane carries: plain events, or a deferred batch of them. */
export type Batch = readonly TapioEvent[] | DeferredBatch

/** The events of a batch as objects (a deferred batch makes them now, once). */
export function eventsOf(batch: Batch): readonly TapioEvent[] {
  return batch instanceof DeferredBatch ? batch.events() : batch
}

/**
 * The array `events()` returned -> its deferred batch, so that the NDJSON of that very array (and
 * only of it: a processor that changes anything returns another array) reuses the batch's bytes.
 */
const encodedForms = new WeakMap<readonly TapioEvent[], DeferredBatch>()

/** For implementations: record that `events` is the materialised form of `batch`. */
export function rememberMaterialised(events: readonly TapioEvent[], batch: DeferredBatch): void {
  encodedForms.set(events, batch)
}

/** The deferred batch `events` was materialised from, if it is exactly such an array. */
export function encodedFormOf(events: readonly TapioEvent[]): DeferredBatch | undefined {
  return encodedForms.get(events)
}

/**
 * A collector's `events()` result may carry this method: the same batches, deferred ones left as
 * they are (the pump prefers it; every other reader of `events()` gets objects).
 */
export const DEFERRED_OUTPUT: unique symbol = Symbol('tapio.deferredOutput')

export interface DeferredOutput {
  [DEFERRED_OUTPUT](): AsyncIterable<DeferredBatch>
}

export function deferredOutputOf(output: unknown): AsyncIterable<DeferredBatch> | undefined {
  if (typeof output !== 'object' || output === null) return undefined
  const f = (output as Partial<DeferredOutput>)[DEFERRED_OUTPUT]
  return typeof f === 'function' ? f.call(output) : undefined
}
