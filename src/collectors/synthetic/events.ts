/**
 * The synthetic collector's own event type, declared and registered exactly as a user's collector
 * registers its types: a typed `data` by declaration merging, and a runtime schema through the
 * public `registerEventData` so `validateEvent` (and the compiled NDJSON encoder) check it.
 * `src/events` knows nothing of it: importing the package (or the synthetic kind) registers it.
 */
import { lazySchema } from '../../core/lazy-schema.js'
import { registerEventData } from '../../events/families.js'

/** What generated test, demo and benchmark events carry. */
export const SyntheticTickDataSchema = lazySchema((Schema) => Schema.Struct({
  /** Sequence number within one collector instance, starting at 0. */
  seq: Schema.Number,
  /** Which start of the registration produced it (1 for the first). */
  generation: Schema.Number,
}))
export type SyntheticTickData = typeof SyntheticTickDataSchema.Type

// A user writes `declare module 'tapio-collector-manager'`; inside the package, the module that
// declares the map.
declare module '../../events/families.js' {
  interface EventDataMap {
    'synthetic.tick': SyntheticTickData
  }
}

registerEventData('synthetic.tick', SyntheticTickDataSchema)
