import { lazySchema } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'

/** What generated test, demo and benchmark events carry. */
export const SyntheticTickDataSchema = lazySchema((Schema) => Schema.Struct({
  /** Sequence number within one collector instance, starting at 0. */
  seq: Schema.Number,
  /** Which start of the registration produced it (1 for the first). */
  generation: Schema.Number,
}))
export type SyntheticTickData = typeof SyntheticTickDataSchema.Type

declare module '../families.js' {
  interface EventDataMap {
    'synthetic.tick': SyntheticTickData
  }
}

registerEventData('synthetic.tick', SyntheticTickDataSchema)
