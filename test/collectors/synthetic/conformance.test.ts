import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SyntheticCollector, syntheticCollectorFactory } from '../../../src/collectors/synthetic/index.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'

const subject = { name: 'synthetic', factory: syntheticCollectorFactory({ rate: 2000, batchSize: 50 }), produce: () => {} }

describe('synthetic collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  // Its source failure is configured, not triggered: a subject whose every run fails after 100 events.
  const failing = conformanceCases({ ...subject, factory: syntheticCollectorFactory({ rate: 0, batchSize: 10, failAfter: 100 }), fail: () => {} })
  const failCase = failing.find((c) => c.name.includes('source failure mid-stream'))
  it('synthetic (failAfter): a source failure mid-stream makes events() throw', async () => {
    expect(failCase).toBeDefined()
    await failCase?.run()
  })

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject), { numRuns: 200 })
  })

  it('faultyStarts counts the starts of a registration across fresh instances', async () => {
    const make = syntheticCollectorFactory({ failAtStart: true, faultyStarts: 2 })
    const signal = new AbortController().signal
    await expect(make().start(signal)).rejects.toThrow('injected start failure')
    await expect(make().start(signal)).rejects.toThrow('injected start failure')
    const third = make()
    await third.start(signal)
    await third.stop()
    // A plain instance counts its own starts.
    await expect(new SyntheticCollector({ failAtStart: true, faultyStarts: 1 }).start(signal)).rejects.toThrow('injected')
  })
})
