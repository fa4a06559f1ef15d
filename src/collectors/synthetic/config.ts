import * as Schema from 'effect/Schema'

export const SyntheticConfigSchema = Schema.Struct({
  /** Events per second; 0 = as fast as the consumer takes them. */
  rate: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Events per batch handed to the manager. */
  batchSize: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** End the source after this many events (per start); unlimited when absent. */
  total: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Event type to emit. */
  type: Schema.optional(Schema.String),
  severity: Schema.optional(Schema.Literals(['debug', 'info', 'warning', 'error', 'critical'])),
  /**
   * Yield one prebuilt batch over and over instead of making fresh events: measures the data plane
   * without the cost of creating events (benchmarks).
   */
  reuseBatch: Schema.optional(Schema.Boolean),
  /** Failure injection. */
  failAtStart: Schema.optional(Schema.Boolean),
  /** Throw from the event source after this many events (per start). */
  failAfter: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  hangInStart: Schema.optional(Schema.Boolean),
  hangInStop: Schema.optional(Schema.Boolean),
  /** Only the first N starts fail or hang (then it behaves); every start when absent. Counted per instance, or per registration with `syntheticCollectorFactory`. */
  faultyStarts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
})
export type SyntheticConfig = typeof SyntheticConfigSchema.Type

export const SYNTHETIC_DEFAULTS = {
  rate: 1000,
  batchSize: 100,
  type: 'synthetic.tick',
  severity: 'info',
} as const

export function parseSyntheticConfig(input: unknown): SyntheticConfig {
  return Schema.decodeUnknownSync(SyntheticConfigSchema)(input ?? {}, { errors: 'all' })
}
