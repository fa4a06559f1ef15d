/**
 * LeaseLock against the fake API server's Leases: create, renew, follow, take over an expired
 * lease (judged by the follower's own clock), optimistic concurrency (409 on a stale
 * resourceVersion) and release.
 */
import { CoordinationV1Api } from '@kubernetes/client-node'
import { afterEach, describe, expect, it } from 'vitest'
import { loadKubeConfig } from '../../../src/collectors/kubernetes/kube-api.js'
import { LeaseLock } from '../../../src/collectors/kubernetes/lease.js'
import { ManualClock } from '../../../src/core/clock.js'
import { createHarness, type Harness } from './harness.js'

describe('kubernetes Lease lock', () => {
  let h: Harness | undefined
  afterEach(async () => {
    await h?.close()
    h = undefined
  })

  function lock(harness: Harness, identity: string, clock: ManualClock, annotations: Record<string, string> = {}): LeaseLock {
    return new LeaseLock({
      kc: loadKubeConfig({ kubeconfig: harness.kubeconfigPath, context: 'fake', inCluster: false }),
      namespace: 'tapio-system',
      name: 'cluster',
      identity,
      leaseDurationMs: 4_000,
      clock,
      annotations: () => annotations,
    })
  }

  it('creates, renews, is followed, and is taken over only once expired by the follower’s own clock', async () => {
    h = await createHarness()
    const ca = new ManualClock(1_000_000)
    // The follower's clock is far off the holder's: only elapsed time matters.
    const cb = new ManualClock(5)
    const a = lock(h, 'a', ca, { progress: '1' })
    const b = lock(h, 'b', cb)
    const signal = new AbortController().signal
    expect(await a.attempt(signal)).toEqual({ kind: 'held-by-us', at: 1_000_000 })
    expect(h.server.lease('tapio-system', 'cluster')).toMatchObject({
      metadata: { annotations: { progress: '1' } },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 4, leaseTransitions: 0 },
    })
    expect(await b.attempt(signal)).toEqual({ kind: 'held-by-other', holder: 'a', at: 5, expiresInMs: 4_000 })
    // a renews; b sees a new version: counted from its previous poll, so still 4 s from then.
    ca.advance(1_000)
    expect((await a.attempt(signal)).kind).toBe('held-by-us')
    cb.advance(1_000)
    expect(await b.attempt(signal)).toEqual({ kind: 'held-by-other', holder: 'a', at: 1_005, expiresInMs: 3_000 })
    // a stops renewing: b takes over 4 s after its poll that still saw a's last version.
    cb.advance(2_999)
    expect((await b.attempt(signal)).kind).toBe('held-by-other')
    cb.advance(2)
    expect(await b.attempt(signal)).toEqual({ kind: 'held-by-us', at: 4_006 })
    expect(b.held()).toMatchObject({ acquired: true, previous: { progress: '1' } })
    expect(h.server.lease('tapio-system', 'cluster')).toMatchObject({ spec: { holderIdentity: 'b', leaseTransitions: 1 } })
    // a comes back: the lease is b's now.
    expect(await a.attempt(signal)).toMatchObject({ kind: 'held-by-other', holder: 'b' })
  })

  it('the server refuses an update with a stale resourceVersion (409), and racing takeovers leave one holder', async () => {
    h = await createHarness()
    const kc = loadKubeConfig({ kubeconfig: h.kubeconfigPath, context: 'fake', inCluster: false })
    const api = kc.makeApiClient(CoordinationV1Api)
    const created = await api.createNamespacedLease({
      namespace: 'tapio-system',
      body: { metadata: { name: 'cluster' }, spec: { holderIdentity: '', leaseDurationSeconds: 4 } },
    })
    const fresh = await api.replaceNamespacedLease({ name: 'cluster', namespace: 'tapio-system', body: created })
    expect(fresh.metadata?.resourceVersion).not.toBe(created.metadata?.resourceVersion)
    const stale = await api.replaceNamespacedLease({ name: 'cluster', namespace: 'tapio-system', body: created }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((stale as { code?: number }).code).toBe(409)
    // The lease is free (no holder): three candidates at once, exactly one gets it.
    const signal = new AbortController().signal
    const results = await Promise.all(['a', 'b', 'c'].map((id) => lock(h as Harness, id, new ManualClock(0)).attempt(signal)))
    expect(results.filter((r) => r.kind === 'held-by-us')).toHaveLength(1)
    expect(results.every((r) => r.kind !== 'held-by-us' ? r.kind === 'conflict' || r.kind === 'held-by-other' : true)).toBe(true)
    const holder = h.server.lease('tapio-system', 'cluster')?.spec as { holderIdentity: string }
    expect(['a', 'b', 'c']).toContain(holder.holderIdentity)
  })

  it('release frees the lease with a short duration, keeping the annotations', async () => {
    h = await createHarness()
    const a = lock(h, 'a', new ManualClock(0), { progress: '7' })
    const signal = new AbortController().signal
    await a.attempt(signal)
    expect(await a.release(signal)).toBe(true)
    expect(h.server.lease('tapio-system', 'cluster')).toMatchObject({
      metadata: { annotations: { progress: '7' } },
      spec: { holderIdentity: '', leaseDurationSeconds: 1 },
    })
    // A free lease is taken at once by anyone.
    expect((await lock(h, 'b', new ManualClock(0)).attempt(signal)).kind).toBe('held-by-us')
  })
})
