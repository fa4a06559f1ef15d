import { lazySchema, schemaApi } from '../../core/lazy-schema.js'

export const SyntheticConfigSchema = lazySchema((Schema) => Schema.Struct({
  rate: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'Events per second; 0 = as fast as the consumer takes them.' }),
  batchSize: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({ description: 'Events per batch handed to the manager.' }),
  total: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'End the source after this many events (per start); unlimited when absent.' }),
  type: Schema.optional(Schema.String).annotate({ description: 'Event type to emit.' }),
  severity: Schema.optional(Schema.Literals(['debug', 'info', 'warning', 'error', 'critical'])).annotate({ description: 'Severity of the emitted events.' }),
  reuseBatch: Schema.optional(Schema.Boolean).annotate({ description: 'Yield one prebuilt batch over and over instead of making fresh events: measures the data plane without the cost of creating events (benchmarks).' }),
  failAtStart: Schema.optional(Schema.Boolean).annotate({ description: 'Failure injection.' }),
  failAfter: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'Throw from the event source after this many events (per start).' }),
  hangInStart: Schema.optional(Schema.Boolean).annotate({ description: 'Failure injection: start() never resolves (until aborted by the start timeout).' }),
  hangInStop: Schema.optional(Schema.Boolean).annotate({ description: 'Failure injection: stop() never resolves (the supervisor must force-stop it).' }),
  faultyStarts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'Only the first N starts fail or hang (then it behaves); every start when absent. Counted per instance, or per registration with `syntheticCollectorFactory`.' }),
}))
export type SyntheticConfig = typeof SyntheticConfigSchema.Type

export const SYNTHETIC_DEFAULTS = {
  rate: 1000,
  batchSize: 100,
  type: 'synthetic.tick',
  severity: 'info',
} as const

export function parseSyntheticConfig(input: unknown): SyntheticConfig {
  return schemaApi().decodeUnknownSync(SyntheticConfigSchema)(input ?? {}, { errors: 'all' })
}
