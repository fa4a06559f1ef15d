import { lazySchema } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'
import { SeveritySchema, TimestampNsSchema } from '../schema.js'

/** One event of a correlated chain, as the incident names it. */
export const CorrelationMemberSchema = lazySchema((Schema) => Schema.Struct({
  /** The chain step it fills (e.g. kernel.oom.kill, k8s.pod.oom_killed). */
  step: Schema.String,
  /** The member event's own id: look it up in the same stream. */
  id: Schema.String,
  type: Schema.String,
  source: Schema.String,
  timestamp: TimestampNsSchema,
  severity: SeveritySchema,
}))
export type CorrelationMember = typeof CorrelationMemberSchema.Type

/**
 * Data of `tapio.correlation.incident` (a chain instance reached its first report) and
 * `tapio.correlation.updated` (a later member joined the same instance).
 */
export const CorrelationDataSchema = lazySchema((Schema) => Schema.Struct({
  /** The chain rule's name: oom-kill, veth-sandbox ... */
  chain: Schema.String,
  /** The id of the instance's `tapio.correlation.incident` event (its own id on that event). */
  incident: Schema.String,
  /** One line for people. */
  summary: Schema.String,
  /** Every member so far, in the chain's step order. */
  members: Schema.Array(CorrelationMemberSchema),
  /** Ids of the members new in this event (all of them on the incident). */
  added: Schema.Array(Schema.String),
  /** The chain's steps in causal order; `complete` when every one has a member. */
  steps: Schema.Array(Schema.String),
  complete: Schema.Boolean,
  /** The keys that linked the members: container:<id>, pod:<uid>/<container>, netns:<name> ... */
  keys: Schema.Array(Schema.String),
  /** Earliest and latest member timestamps. */
  firstTimestamp: TimestampNsSchema,
  lastTimestamp: TimestampNsSchema,
}))
export type CorrelationData = typeof CorrelationDataSchema.Type

export const CORRELATION_EVENT_TYPES = {
  incident: 'tapio.correlation.incident',
  updated: 'tapio.correlation.updated',
} as const

declare module '../families.js' {
  interface EventDataMap {
    'tapio.correlation.incident': CorrelationData
    'tapio.correlation.updated': CorrelationData
  }
}

registerEventData(CORRELATION_EVENT_TYPES.incident, CorrelationDataSchema)
registerEventData(CORRELATION_EVENT_TYPES.updated, CorrelationDataSchema)
