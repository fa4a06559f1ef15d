/**
 * Relist timing after an expired watch (issue 12, item 6), in virtual time: the reflector's
 * clock is a ManualClock that moves only when the test advances it, and the test advances it
 * only while the reflector waits on a timer with nothing in flight. So every request the server
 * sees is stamped with the exact virtual time the reflector chose for it, and no assertion
 * depends on how fast this machine is.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { parseKubernetesConfig } from '../../../src/collectors/kubernetes/config.js'
import { loadKubeConfig } from '../../../src/collectors/kubernetes/kube-api.js'
import { type Change, Reflector } from '../../../src/collectors/kubernetes/reflector.js'
import { RESOURCES } from '../../../src/collectors/kubernetes/resources.js'
import { ManualClock } from '../../../src/core/clock.js'
import { createHarness, fresh, type Harness, waitFor } from './harness.js'

interface Timed {
  readonly virtualAt: number
  readonly watch: boolean
  readonly outcome: string
}

describe('kubernetes reflector: relist timing (driven clock)', () => {
  let h: Harness | undefined
  let reflector: Reflector | undefined

  afterEach(async () => {
    await reflector?.stop()
    reflector = undefined
    await h?.close()
    h = undefined
  })

  /**
   * Runs the reflector until its pods watch is open again, advancing virtual time to each timer
   * it waits on. Returns the requests made meanwhile, stamped with virtual time, and the waits.
   */
  async function driveUntilWatching(
    harness: Harness,
    r: Reflector,
    clock: ManualClock,
    from: number,
  ): Promise<{ requests: Timed[]; waits: number[] }> {
    const requests: Timed[] = []
    const waits: number[] = []
    let seen = from
    const collect = () => {
      for (; seen < harness.server.requests.length; seen++) {
        const q = harness.server.requests[seen]
        if (q) requests.push({ virtualAt: clock.now(), watch: q.watch, outcome: q.outcome })
      }
    }
    for (let step = 0; step < 50; step++) {
      const state = await waitFor('the reflector to wait on a timer or watch again', () => {
        collect()
        if (harness.server.openWatches === 1 && r.status().connected) return 'watching'
        // Waiting: the reflector sleeps until its next attempt, on a timer of the clock.
        const next = r.status().nextRetryAt
        if (next !== undefined && clock.nextDue() === Date.parse(next)) return 'waiting'
        return undefined
      })
      if (state === 'watching') return { requests, waits }
      const wait = (clock.nextDue() as number) - clock.now()
      waits.push(wait)
      await clock.advanceAsync(wait)
    }
    throw new Error('the watch never reopened')
  }

  it('a 410 then two HTTP 5xx: relists at once, then waits only the backoff of each failure', async () => {
    h = await createHarness()
    const harness = h
    const s = harness.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    const clock = new ManualClock(1_000_000)
    const changes: Change[] = []
    // Defaults, except no jitter so the backoff is exact: 500 ms, then 1000 ms. relistMinIntervalMs
    // stays at its 5 s default: the old code waited that long before every relist.
    const config = parseKubernetesConfig({ backoff: { jitter: 0 } })
    expect(config.relistMinIntervalMs).toBe(5_000)
    const r = new Reflector({
      kc: loadKubeConfig({ kubeconfig: harness.kubeconfigPath, context: 'fake', inCluster: false }),
      info: RESOURCES.pods,
      config,
      onChanges: (c) => changes.push(...c),
      accept: () => true,
      clock,
    })
    reflector = r
    r.start()
    await waitFor('first watch', () => s.openWatches === 1 && r.status().connected)
    expect(changes.map((c) => c.type)).toEqual(['added'])

    // Moments after the list (no virtual time passed), the server compacts and expires the watch;
    // the next two lists fail with 500.
    const t410 = clock.now()
    const before = s.requests.length
    s.injectFault({ kind: 'http500', verb: 'list', resource: 'pods', times: 2 })
    s.compact()
    s.expireWatches()
    const { requests, waits } = await driveUntilWatching(harness, r, clock, before)

    const lists = requests.filter((q) => !q.watch)
    expect(lists.map((q) => q.outcome)).toEqual(['http500', 'http500', 'ok'])
    // Relist at once after the 410; then 500 ms and 1000 ms of backoff, nothing else.
    expect(lists.map((q) => q.virtualAt - t410)).toEqual([0, 500, 1500])
    expect(waits).toEqual([500, 1000])
    const watches = requests.filter((q) => q.watch)
    expect(watches).toHaveLength(1)
    expect(watches[0]?.virtualAt).toBe(t410 + 1500)
    console.log(`pods watch closed for ${clock.now() - t410} ms of virtual time after a 410 and two 5xx`)
    // The relist found nothing new: no change reported twice.
    expect(changes.map((c) => c.type)).toEqual(['added'])
    expect(r.status()).toMatchObject({ lists: 2, relists: 1, errors: 2, consecutiveFailures: 0, synced: true })
  })

  it('a storm of 410s (each fresh watch expires at once): the first relist is immediate, later ones one per relistMinIntervalMs', async () => {
    h = await createHarness()
    const harness = h
    const s = harness.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    const clock = new ManualClock(0)
    const changes: Change[] = []
    const config = parseKubernetesConfig({ backoff: { jitter: 0 }, relistMinIntervalMs: 5_000 })
    const r = new Reflector({
      kc: loadKubeConfig({ kubeconfig: harness.kubeconfigPath, context: 'fake', inCluster: false }),
      info: RESOURCES.pods,
      config,
      onChanges: (c) => changes.push(...c),
      accept: () => true,
      clock,
    })
    reflector = r
    r.start()
    await waitFor('first watch', () => s.openWatches === 1 && r.status().connected)
    // A healthy watch (it delivered a change), then the storm: three fresh watches in a row expire at once.
    s.create('pods', fresh('pod', 'q', 'shop'))
    await waitFor('the change on the watch', () => changes.length === 2)
    const t410 = clock.now()
    const before = s.requests.length
    s.injectFault({ kind: 'error410', verb: 'watch', resource: 'pods', times: 3 })
    s.expireWatches()
    const { requests } = await driveUntilWatching(harness, r, clock, before)
    const lists = requests.filter((q) => !q.watch).map((q) => q.virtualAt - t410)
    // Relist 1 at once (the watch before it was healthy); its watch expires at once, so relist 2
    // waits the interval since relist 1; and so on.
    expect(lists).toEqual([0, 5_000, 10_000, 15_000])
    expect(requests.filter((q) => q.watch).map((q) => q.outcome)).toEqual(['error410', 'error410', 'error410', 'ok'])
    // Nothing was reported twice across the four relists.
    expect(changes.map((c) => c.type)).toEqual(['added', 'added'])
  })
})
