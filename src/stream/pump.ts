import type * as Cause from 'effect/Cause'
import type * as Stream from 'effect/Stream'
import type { CollectorOutput } from '../core/collector.js'
import { lazyModule } from '../core/lazy-module.js'
import { type EventInput, stampEvent, type TapioEvent } from '../events/event.js'
import { type Batch, DeferredBatch, deferredOutputOf } from './deferred-batch.js'
import type { MergeBuffer } from './merge-buffer.js'

/** How an event source ended. */
export type PumpExit =
  | { readonly kind: 'ended' }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'interrupted' }

export interface Pump {
  /** Resolves once the source has ended, failed or was interrupted; never rejects. */
  readonly done: Promise<PumpExit>
  /** Stop reading; a blocked offer is withdrawn and counted dropped (`shutdown`). */
  interrupt(): Promise<void>
}

// Effect's runtime loads when the first collector starts, not with the package (lazy-module.ts).
const causeModule = lazyModule('effect/Cause')
const effectModule = lazyModule('effect/Effect')
const exitModule = lazyModule('effect/Exit')
const fiberModule = lazyModule('effect/Fiber')
const streamModule = lazyModule('effect/Stream')

function isEventInput(x: unknown): x is EventInput {
  return typeof x === 'object' && x !== null && typeof (x as { type?: unknown }).type === 'string'
}

/**
 * Stamp a collector's output into TapioEvents. Arrays are kept as they are when every element is
 * an event (no copy on the hot path); non-events are counted `invalid` and left out.
 */
export function normalizeOutput(buffer: MergeBuffer, source: string, item: CollectorOutput): readonly TapioEvent[] | undefined
export function normalizeOutput(buffer: MergeBuffer, source: string, item: CollectorOutput | DeferredBatch): Batch | undefined
export function normalizeOutput(buffer: MergeBuffer, source: string, item: CollectorOutput | DeferredBatch): Batch | undefined {
  if (item instanceof DeferredBatch) {
    // Its events get their ids and source here, like stampEvent's; they carry their own time and severity.
    if (item.length === 0) return undefined
    item.stamp(source)
    return item
  }
  if (Array.isArray(item)) {
    const arr = item as readonly unknown[]
    let bad = 0
    for (let i = 0; i < arr.length; i++) {
      const e = arr[i]
      if (isEventInput(e)) stampEvent(e, source)
      else bad += 1
    }
    if (bad === 0) return arr as readonly TapioEvent[]
    buffer.countInvalid(source, bad)
    const good = arr.filter(isEventInput) as TapioEvent[]
    return good.length > 0 ? good : undefined
  }
  if (isEventInput(item)) return [stampEvent(item, source)]
  buffer.countInvalid(source, 1)
  return undefined
}

function describe(cause: Cause.Cause<unknown>): string {
  const err = causeModule().squash(cause)
  if (err instanceof Error) return err.message || err.name
  return String(err)
}

/**
 * The data plane of one collector instance: an Effect stream of its output, stamped and offered
 * batch by batch into the merge buffer (awaiting admission under `block`: backpressure).
 */
export function startPump(
  buffer: MergeBuffer,
  source: string,
  output: Stream.Stream<CollectorOutput, unknown> | AsyncIterable<CollectorOutput>,
): Pump {
  const Cause = causeModule()
  const Effect = effectModule()
  const Exit = exitModule()
  const Fiber = fiberModule()
  const Stream = streamModule()
  // A collector that keeps its batches encoded (ebpf) hands them over as they are.
  const deferred = Stream.isStream(output) ? undefined : deferredOutputOf(output)
  const stream: Stream.Stream<CollectorOutput | DeferredBatch, unknown> = Stream.isStream(output)
    ? output
    : Stream.fromAsyncIterable<CollectorOutput | DeferredBatch, unknown>(deferred ?? output, (e) => e)
  const program = Stream.runForEach(stream, (item) => {
    const batch = normalizeOutput(buffer, source, item)
    if (batch === undefined) return Effect.void
    const admitted = buffer.offer(source, batch)
    return admitted === undefined ? Effect.void : Effect.promise(() => admitted)
  }).pipe(Effect.onInterrupt(() => Effect.sync(() => buffer.cancelPending(source))))

  const fiber = Effect.runFork(program)
  const done = new Promise<PumpExit>((resolve) => {
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit)) resolve({ kind: 'ended' })
      else if (Cause.hasInterruptsOnly(exit.cause)) resolve({ kind: 'interrupted' })
      else resolve({ kind: 'failed', error: describe(exit.cause) })
    })
  })
  return {
    done,
    interrupt: async () => {
      await Effect.runPromise(Fiber.interrupt(fiber))
    },
  }
}
