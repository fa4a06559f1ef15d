import { afterEach, describe, expect, it } from 'vitest'
import type { FaultKind } from './fake-apiserver.js'
import { changeKeys, createHarness, delay, fresh, type Harness, waitFor } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const uidOf = (o: Record<string, unknown>) => (o.metadata as { uid: string }).uid
const rvOf = (o: Record<string, unknown>) => (o.metadata as { resourceVersion: string }).resourceVersion

function expectExactlyOnce(keys: readonly string[], expected: readonly string[]): void {
  for (const k of expected) expect(keys.filter((x) => x === k), k).toHaveLength(1)
  const seen = new Set<string>()
  for (const k of keys) {
    expect(seen.has(k), `duplicate ${k}`).toBe(false)
    seen.add(k)
  }
}

const FAULTS: readonly { kind: FaultKind; relists: boolean; inactivity: boolean }[] = [
  { kind: 'close', relists: false, inactivity: false },
  { kind: 'error410', relists: true, inactivity: false },
  { kind: 'http410', relists: true, inactivity: false },
  { kind: 'http500', relists: false, inactivity: false },
  { kind: 'stall', relists: false, inactivity: true },
  { kind: 'stallHeaders', relists: false, inactivity: true },
]

describe('kubernetes collector: every change reaches the stream exactly once through faults', () => {
  for (const f of FAULTS) {
    it(`survives ${f.kind} on re-watch`, async () => {
      h = await createHarness()
      const c = h
      const s = h.server
      const stable = s.create('pods', fresh('pod', 'stable', 'shop'))
      const a = s.create('pods', fresh('pod', 'a', 'shop'))
      const gone = s.create('pods', fresh('pod', 'gone', 'shop'))
      await h.startCollector({ resources: ['pods'], ...(f.inactivity ? { inactivityTimeoutMs: 800 } : {}) })
      // Healthy watches hear something well within the short inactivity timeout.
      if (f.inactivity) s.autoBookmark(100)
      await waitFor('initial list', () => c.of('k8s.pod.added').length === 3)
      await waitFor('watch open', () => s.openWatches === 1)
      const watchesBefore = s.watchRequests('pods').length
      const listsBefore = s.listRequests('pods').length

      s.injectFault({ kind: f.kind, times: 2 })
      // A 410 means the history is gone; compaction makes the next watch from the old version fail too.
      if (f.relists) s.compact()
      s.closeWatches()
      const a2 = s.update('pods', 'shop', 'a', (o) => {
        ;(o.metadata as Record<string, unknown>).labels = { app: 'web', changed: 'yes' }
      })
      const b = s.create('pods', fresh('pod', 'b', 'shop'))
      s.delete('pods', 'shop', 'gone')

      await waitFor('changes after the fault', () => c.of('k8s.pod.deleted').length === 1 && c.of('k8s.pod.added', 'b').length === 1 && c.of('k8s.pod.updated', 'a').length === 1)
      await waitFor('health ok', () => c.collector.health().status === 'ok' && c.collector.health().details?.connected === true)
      // Settle: a late duplicate would show up here.
      const after = s.create('pods', fresh('pod', 'after', 'shop'))
      await waitFor('a change after recovery', () => c.of('k8s.pod.added', 'after').length === 1)

      const keys = changeKeys(c.events)
      expectExactlyOnce(keys, [
        `k8s.pod.added ${uidOf(stable)} ${rvOf(stable)}`,
        `k8s.pod.added ${uidOf(a)} ${rvOf(a)}`,
        `k8s.pod.added ${uidOf(gone)} ${rvOf(gone)}`,
        `k8s.pod.updated ${uidOf(a2)} ${rvOf(a2)}`,
        `k8s.pod.added ${uidOf(b)} ${rvOf(b)}`,
        `k8s.pod.added ${uidOf(after)} ${rvOf(after)}`,
      ])
      expect(c.of('k8s.pod.deleted').map((e) => (e.data as { uid: string }).uid)).toEqual([uidOf(gone)])
      // No spurious updates for the object nobody touched, even across a re-list.
      expect(c.of('k8s.pod.updated', 'stable')).toHaveLength(0)
      expect(c.events).toHaveLength(7)

      expect(s.watchRequests('pods').length).toBeGreaterThanOrEqual(watchesBefore + 3)
      const stats = c.collector.statistics().counters
      if (f.relists) {
        expect(s.listRequests('pods').length).toBeGreaterThan(listsBefore)
        expect(stats.relists).toBeGreaterThanOrEqual(1)
      } else {
        expect(s.listRequests('pods').length).toBe(listsBefore)
      }
      if (f.inactivity) expect(stats.inactivity_timeouts).toBeGreaterThanOrEqual(2)
      if (f.kind === 'http500') expect(stats.errors).toBeGreaterThanOrEqual(2)
      expect(c.consumerError).toBeUndefined()
    })
  }

  it('resumes from the last BOOKMARK version instead of the listed one', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    await h.startCollector({ resources: ['pods'] })
    await waitFor('initial list', () => c.of('k8s.pod.added').length === 1)
    // Other resources move the global version on; only a bookmark tells the pod watch about it.
    for (let i = 0; i < 5; i++) s.create('nodes', fresh('node', `n${i}`))
    await waitFor('the watch is open', () => s.bookmark() === 1)
    const listed = s.watchRequests('pods')[0]?.query.resourceVersion
    expect(listed).toMatch(/^\d+$/)
    const bookmarked = s.resourceVersion
    await waitFor('bookmark counted', () => c.collector.statistics().counters.bookmarks === 1)
    s.closeWatches()
    await waitFor('re-watch', () => s.watchRequests('pods').length === 2)
    expect(listed).not.toBe(bookmarked)
    expect(s.watchRequests('pods')[1]?.query.resourceVersion).toBe(bookmarked)
    expect(s.listRequests('pods')).toHaveLength(1)
  })

  it('counts and skips malformed lines and objects; later changes still arrive', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    await h.startCollector({ resources: ['pods'] })
    await waitFor('synced', () => c.collector.health().details?.synced === true && s.openWatches === 1)
    s.sendRawLine('this is not json {')
    s.sendRawLine('{"type":"SURPRISE","object":{}}')
    s.createRaw('pods', { kind: 'Pod', metadata: { name: 'no-uid', namespace: 'shop' } })
    s.createRaw('pods', { kind: 'Pod', spec: {} })
    s.createRaw('pods', { kind: 'Pod', metadata: { name: 'bad-status', namespace: 'shop', uid: 'u-1' }, status: { phase: 42 } })
    const ok = s.create('pods', fresh('pod', 'fine', 'shop'))
    await waitFor('the valid pod', () => c.of('k8s.pod.added', 'fine').length === 1)
    // Unknown watch type plus three objects that fail their schema; a non-JSON line is dropped by the client itself.
    expect(c.collector.statistics().counters.malformed_objects).toBe(4)
    expect(c.events.map((e) => e.type)).toEqual(['k8s.pod.added'])
    expect((c.events[0]?.data as { uid: string }).uid).toBe(uidOf(ok))
    expect(c.collector.health().status).toBe('ok')

    // A re-list meets the same stored malformed objects: counted again, still skipped.
    s.expireWatches()
    await waitFor('relist', () => c.collector.statistics().counters.relists === 1)
    expect(c.collector.statistics().counters.malformed_objects).toBe(7)
    expect(c.events).toHaveLength(1)
  })

  it('reassembles slow, fragmented watch streams', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    await h.startCollector({ resources: ['pods'] })
    await waitFor('watching', () => s.openWatches === 1)
    s.setStreamShape({ splitBytes: 97, delayMs: 1 })
    const created = []
    for (let i = 0; i < 10; i++) created.push(s.create('pods', fresh('pod', `slow-${i}`, 'shop')))
    await waitFor('all slow pods', () => c.of('k8s.pod.added').length === 10, 60_000)
    expect(c.of('k8s.pod.added').map((e) => (e.data as { uid: string }).uid)).toEqual(created.map(uidOf))
    expect(c.collector.statistics().counters.malformed_objects).toBe(0)
  })

  it('keeps re-watches bounded by its backoff while the server flaps, then recovers', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    await h.startCollector({ resources: ['pods'], backoff: { initialMs: 50, maxMs: 400, jitter: 0.2 } })
    await waitFor('watching', () => s.openWatches === 1)
    s.injectFault({ kind: 'close', times: Number.POSITIVE_INFINITY })
    const t0 = Date.now()
    s.closeWatches()
    await waitFor('health reports the flapping', () => c.collector.health().status === 'recoverable_error')
    // Every scheduled retry lies within the backoff cap (400 ms plus 20% jitter) of now.
    const retryDelays: number[] = []
    const sampleUntil = Date.now() + 2_500
    while (Date.now() < sampleUntil) {
      const next = (c.collector.health().details?.watches as Record<string, { nextRetryAt?: string }>).pods?.nextRetryAt
      if (next) retryDelays.push(Date.parse(next) - Date.now())
      await delay(25)
    }
    expect(retryDelays.length).toBeGreaterThan(0)
    expect(Math.max(...retryDelays)).toBeLessThanOrEqual(480)
    const flaps = s.watchRequests('pods').filter((r) => r.at >= t0 && r.outcome === 'close')
    const span = Date.now() - t0
    // Delays grow 50, 100, 200, then 400 ms each (jitter only adds): at most this many attempts fit.
    const bound = 4 + Math.ceil(span / 400) + 1
    expect(flaps.length).toBeGreaterThanOrEqual(3)
    expect(flaps.length).toBeLessThanOrEqual(bound)
    // The client alone re-watches with no delay (hundreds per second against such a server).

    s.clearFaults()
    await waitFor('recovered', () => c.collector.health().status === 'ok' && c.collector.health().details?.connected === true)
    s.create('pods', fresh('pod', 'after-flap', 'shop'))
    await waitFor('event after recovery', () => c.of('k8s.pod.added', 'after-flap').length === 1)
  })

  it('rate-limits re-lists under a storm of 410s', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    await h.startCollector({ resources: ['pods'], relistMinIntervalMs: 500 })
    await waitFor('watching', () => s.openWatches === 1)
    s.injectFault({ kind: 'error410', times: Number.POSITIVE_INFINITY })
    const t0 = Date.now()
    s.closeWatches()
    await delay(2_500)
    const lists = s.listRequests('pods').filter((r) => r.at >= t0)
    const span = Date.now() - t0
    expect(lists.length).toBeGreaterThanOrEqual(2)
    expect(lists.length).toBeLessThanOrEqual(Math.ceil(span / 500) + 1)
    s.clearFaults()
    // Re-lists of unchanged objects report nothing new.
    expect(c.of('k8s.pod.added')).toHaveLength(1)
    expect(c.of('k8s.pod.updated')).toHaveLength(0)
  })

  it('turns an unreachable API server into recoverable_error without ending events(), and catches up', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    const keep = s.create('pods', fresh('pod', 'keep', 'shop'))
    s.create('pods', fresh('pod', 'drop', 'shop'))
    await h.startCollector({ resources: ['pods', 'nodes'] })
    await waitFor('synced', () => c.collector.health().details?.synced === true)
    await s.down()
    await waitFor('unhealthy', () => c.collector.health().status === 'recoverable_error')
    const health = c.collector.health()
    expect(health.message).toMatch(/pods|nodes/)
    expect(health.details?.connected).toBe(false)
    // Changes while it is away; its history is compacted too, so catching up needs a re-list.
    s.update('pods', 'shop', 'keep', (o) => {
      ;(o.status as Record<string, unknown>).phase = 'Succeeded'
    })
    s.delete('pods', 'shop', 'drop')
    s.create('nodes', fresh('node', 'new-node'))
    s.compact()
    await delay(300)
    expect(c.consumerError).toBeUndefined()
    await s.up()
    await waitFor('healthy again', () => c.collector.health().status === 'ok' && c.collector.health().details?.connected === true)
    await waitFor('caught up', () => c.of('k8s.pod.deleted').length === 1 && c.of('k8s.node.added').length === 1 && c.of('k8s.pod.updated').length === 1)
    expect(c.of('k8s.pod.updated')[0]?.data).toMatchObject({ uid: uidOf(keep), phase: 'Succeeded' })
    expect(c.of('k8s.pod.phase_changed')).toHaveLength(1)
    expect(c.collector.statistics().counters.errors).toBeGreaterThan(0)
    expect(c.consumerError).toBeUndefined()
  })
})
