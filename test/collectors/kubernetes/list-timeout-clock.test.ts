/**
 * A list the API server accepts and never answers is abandoned after `inactivityTimeoutMs` of the
 * reflector's clock: a ManualClock decides when, the HTTP server and its silence are real.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { parseKubernetesConfig } from '../../../src/collectors/kubernetes/config.js'
import { loadKubeConfig } from '../../../src/collectors/kubernetes/kube-api.js'
import { type Change, Reflector } from '../../../src/collectors/kubernetes/reflector.js'
import { RESOURCES } from '../../../src/collectors/kubernetes/resources.js'
import { ManualClock } from '../../../src/core/clock.js'
import { createHarness, fresh, type Harness, waitFor } from './harness.js'

const IDLE = 30_000

describe('kubernetes reflector: a silent list on a driven clock', () => {
  let h: Harness | undefined
  let reflector: Reflector | undefined

  afterEach(async () => {
    await reflector?.stop()
    reflector = undefined
    await h?.close()
    h = undefined
  })

  it('gives up exactly inactivityTimeoutMs after the request, then backs off and lists again', async () => {
    h = await createHarness()
    const s = h.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    s.injectFault({ kind: 'stallHeaders', verb: 'list', resource: 'pods', times: 1 })
    const clock = new ManualClock(0)
    const changes: Change[] = []
    const r = new Reflector({
      kc: loadKubeConfig({ kubeconfig: h.kubeconfigPath, context: 'fake', inCluster: false }),
      info: RESOURCES.pods,
      config: parseKubernetesConfig({ backoff: { jitter: 0 }, inactivityTimeoutMs: IDLE }),
      onChanges: (c) => changes.push(...c),
      accept: () => true,
      clock,
    })
    reflector = r
    r.start()
    const lists = () => s.requests.filter((q) => !q.watch && q.resource === 'pods')
    await waitFor('the list to reach the server and its idle timer to be armed', () => lists().length === 1 && clock.nextDue() === IDLE)
    await clock.advanceAsync(IDLE - 1)
    expect(r.status().errors).toBe(0)
    expect(lists()).toHaveLength(1)
    await clock.advanceAsync(1)
    await waitFor('the timed-out list to count as an error', () => r.status().errors === 1)
    expect(String(r.status().lastError)).toContain(`no data from the API server for ${IDLE} ms`)
    // The first failure's backoff (500 ms, no jitter), on the same clock.
    await waitFor('the backoff timer', () => clock.nextDue() === IDLE + 500)
    await clock.advanceAsync(500)
    await waitFor('the watch after a good list', () => s.openWatches === 1 && r.status().connected)
    expect(lists()).toHaveLength(2)
    expect(changes.map((c) => c.type)).toEqual(['added'])
  })
})
