import type * as Result from 'effect/Result'
import { type DataOf, dataSchemaFor } from './families.js'
// The vocabulary registers its data schemas as it loads: validateEvent must know them all.
import './vocabulary/index.js'
import { lazyModule } from '../core/lazy-module.js'
import { schemaApi } from '../core/lazy-schema.js'
import { nextEventId } from './id.js'
import type { Entity, K8sContext, Severity, TraceContext } from './schema.js'
import { TapioEventSchema } from './schema.js'
import { nowNs } from './time.js'

/** The one event type every collector produces. */
export interface TapioEvent<T extends string = string> {
  /** Unique id: `<process prefix>-<counter base36>`, assigned by the manager when missing. */
  readonly id: string
  /** Epoch nanoseconds as a decimal string. */
  readonly timestamp: string
  /** Dotted name such as `kernel.process.exec`, `k8s.pod.updated`. */
  readonly type: T
  /** The name the collector was registered under. */
  readonly source: string
  readonly severity: Severity
  readonly entity?: Entity
  readonly data: DataOf<T>
  readonly k8s?: K8sContext
  readonly trace?: TraceContext
}

/**
 * What a collector yields. `id`, `timestamp` and `source` may be left out: the manager stamps
 * them (`source` is always overwritten with the registered name, so a collector cannot
 * impersonate another). `severity` defaults to `info`.
 */
export interface EventInput<T extends string = string> {
  readonly id?: string
  readonly timestamp?: string
  readonly type: T
  readonly source?: string
  readonly severity?: Severity
  readonly entity?: Entity
  readonly data?: DataOf<T>
  readonly k8s?: K8sContext
  readonly trace?: TraceContext
}

const EMPTY_DATA: Readonly<Record<string, unknown>> = Object.freeze({})

/**
 * Fill the fields the manager owns. Mutates and returns the same object (the fast path at
 * millions of events per second); a frozen or sealed input is copied instead.
 */
export function stampEvent(input: EventInput, source: string): TapioEvent {
  const e = input as { -readonly [K in keyof TapioEvent]?: TapioEvent[K] }
  try {
    if (e.id === undefined) e.id = nextEventId()
    if (e.timestamp === undefined) e.timestamp = nowNs()
    if (e.source !== source) e.source = source
    if (e.severity === undefined) e.severity = 'info'
    if (e.data === undefined) e.data = EMPTY_DATA
    return e as TapioEvent
  } catch {
    // Module code is strict: writing to a frozen object throws rather than being ignored.
    return stampEvent({ ...input }, source)
  }
}

/** Build a complete event (for collectors that want to stamp themselves). */
export function makeEvent<T extends string>(
  source: string,
  type: T,
  data: DataOf<T>,
  extra?: Partial<Pick<TapioEvent<T>, 'severity' | 'entity' | 'k8s' | 'trace' | 'timestamp'>>,
): TapioEvent<T> {
  return {
    id: nextEventId(),
    timestamp: extra?.timestamp ?? nowNs(),
    type,
    source,
    severity: extra?.severity ?? 'info',
    ...(extra?.entity ? { entity: extra.entity } : {}),
    data,
    ...(extra?.k8s ? { k8s: extra.k8s } : {}),
    ...(extra?.trace ? { trace: extra.trace } : {}),
  }
}

export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError'
  constructor(
    readonly detail: string,
    readonly input: unknown,
  ) {
    super(`invalid event: ${detail}`)
  }
}

// Built on the first validation, not at import (see core/lazy-schema.ts), as is effect/Result
// (core/lazy-module.ts), which effect/Schema loads anyway.
const resultModule = lazyModule('effect/Result')
let decodeEnvelope: ReturnType<typeof envelopeDecoder> | undefined
function envelopeDecoder() {
  return schemaApi().decodeUnknownResult(TapioEventSchema)
}

/**
 * Validate untrusted input (a decoded NDJSON line, a NATS message) as a TapioEvent,
 * including the `data` schema registered for its type.
 */
export function validateEvent(input: unknown): Result.Result<TapioEvent, InvalidEventError> {
  const Result = resultModule()
  decodeEnvelope ??= envelopeDecoder()
  const envelope = decodeEnvelope(input, { errors: 'all' })
  if (Result.isFailure(envelope)) {
    return Result.fail(new InvalidEventError(String(envelope.failure), input))
  }
  const event = envelope.success
  const dataSchema = dataSchemaFor(event.type)
  if (dataSchema) {
    const data = schemaApi().decodeUnknownResult(dataSchema)(event.data, { errors: 'all' })
    if (Result.isFailure(data)) {
      const msg = String(data.failure).replace(/at \[/g, 'at ["data"][')
      return Result.fail(new InvalidEventError(`${event.type}: ${msg}`, input))
    }
  }
  return Result.succeed(event as TapioEvent)
}

/** Encode for JSON (the event is already JSON-safe; this checks it). */
export function encodeEvent(event: TapioEvent): string {
  return JSON.stringify(event)
}
