import fc from 'fast-check'
import * as Effect from 'effect/Effect'
import * as Schedule from 'effect/Schedule'
import * as Stream from 'effect/Stream'
import { describe, it } from 'vitest'
import { effectCollector } from '../../src/core/effect-collector.js'
import type { EventInput } from '../../src/events/event.js'
import { conformanceCases, lifecycleProperty } from '../../src/testing/index.js'

const tick: EventInput = { type: 'fx.tick' }
// An Effect-native source that keeps producing while it runs, with a resource in its scope.
const subject = {
  name: 'effectCollector',
  factory: () =>
    effectCollector({
      acquire: Effect.acquireRelease(Effect.void, () => Effect.void),
      events: Stream.repeat(Stream.succeed([tick, tick]), Schedule.spaced('5 millis')),
    }),
  produce: () => {},
}

describe('effectCollector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)
  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject), { numRuns: 50 })
  })
})
