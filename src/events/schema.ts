import { lazySchema } from '../core/lazy-schema.js'

// Every schema here is built on first use (see lazy-schema.ts): the root import stays free of effect/Schema.

/** Severity levels, lowest first. */
const SEVERITY_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const
export type Severity = (typeof SEVERITY_LEVELS)[number]
export const SEVERITIES: readonly Severity[] = SEVERITY_LEVELS
export const SeveritySchema = lazySchema((Schema) => Schema.Literals(SEVERITY_LEVELS))

/** Epoch nanoseconds as a decimal string (see `time.ts` for why a string). */
export const TimestampNsSchema = lazySchema((Schema) => Schema.String.check(
  Schema.isPattern(/^\d{1,20}$/, { description: 'epoch nanoseconds as a decimal string' }),
))

/** `family.subject.action` style names: lowercase segments separated by dots. */
export const EventTypeSchema = lazySchema((Schema) => Schema.String.check(
  Schema.isPattern(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/, {
    description: 'a dotted lowercase event type such as kernel.process.exec',
  }),
))

export const EntitySchema = lazySchema((Schema) => Schema.Struct({
  kind: Schema.String,
  name: Schema.String,
  namespace: Schema.optional(Schema.String),
  uid: Schema.optional(Schema.String),
}))
export type Entity = typeof EntitySchema.Type

/** Pod/container identity, filled by a collector that knows it or by enrichment. */
export const K8sContextSchema = lazySchema((Schema) => Schema.Struct({
  namespace: Schema.optional(Schema.String),
  pod: Schema.optional(Schema.String),
  podUid: Schema.optional(Schema.String),
  container: Schema.optional(Schema.String),
  containerId: Schema.optional(Schema.String),
  node: Schema.optional(Schema.String),
  workload: Schema.optional(Schema.Struct({ kind: Schema.String, name: Schema.String })),
}))
export type K8sContext = typeof K8sContextSchema.Type

/** W3C trace context. */
export const TraceContextSchema = lazySchema((Schema) => Schema.Struct({
  traceId: Schema.String.check(Schema.isPattern(/^[0-9a-f]{32}$/, { description: '32 lowercase hex digits' })),
  spanId: Schema.String.check(Schema.isPattern(/^[0-9a-f]{16}$/, { description: '16 lowercase hex digits' })),
  traceFlags: Schema.optional(Schema.Number),
}))
export type TraceContext = typeof TraceContextSchema.Type

export const EventDataSchema = lazySchema((Schema) => Schema.Record(Schema.String, Schema.Unknown))

/** The wire form of every event; `data` is checked further per type (see `families.ts`). */
export const TapioEventSchema = lazySchema((Schema) => Schema.Struct({
  id: Schema.String.check(Schema.isMinLength(1)),
  timestamp: TimestampNsSchema,
  type: EventTypeSchema,
  source: Schema.String.check(Schema.isMinLength(1)),
  severity: SeveritySchema,
  entity: Schema.optional(EntitySchema),
  data: EventDataSchema,
  k8s: Schema.optional(K8sContextSchema),
  trace: Schema.optional(TraceContextSchema),
}))
export type TapioEventWire = typeof TapioEventSchema.Type
