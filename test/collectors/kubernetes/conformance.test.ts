import fc from 'fast-check'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { KubernetesCollector } from '../../../src/collectors/kubernetes/index.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'
import type { Collector } from '../../../src/core/collector.js'
import { createHarness, FAST, fresh, type Harness, waitFor } from './harness.js'

let h: Harness
beforeAll(async () => {
  h = await createHarness()
})
afterAll(async () => {
  await h?.close()
})

let pods = 0
// Real list/watch against the test API server; creating a pod makes the collector produce. The
// collector never fails mid-stream by design (docs/collectors/kubernetes.md: the API server being
// down never ends events(), it retries with backoff): its fault case is the server going away
// (connections reset, new ones refused) until the collector reports it, then coming back.
const subject = {
  name: 'kubernetes',
  factory: () => new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'fake', resources: ['pods'], ...FAST }),
  produce: () => {
    h.server.create('pods', fresh('pod', `kit-${pods++}`, 'shop'))
  },
  survive: {
    inject: async (c: Collector) => {
      await h.server.down()
      await waitFor('the collector to report the API server gone', () => c.health?.().status === 'recoverable_error')
    },
    heal: () => h.server.up(),
  },
}

describe('kubernetes collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })
})
