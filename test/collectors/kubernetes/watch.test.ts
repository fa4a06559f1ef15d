import { afterEach, describe, expect, it } from 'vitest'
import { changeKeys, createHarness, fresh, type Harness, waitFor } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

function countBy(keys: readonly string[]): Map<string, number> {
  const m = new Map<string, number>()
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1)
  return m
}

describe('kubernetes collector: list and watch against the fake API server', () => {
  it('reports existing objects once, then every create/update/delete exactly once', async () => {
    h = await createHarness()
    const { server } = h
    const pod = server.create('pods', fresh('pod', 'web-1', 'shop'))
    const node = server.create('nodes', fresh('node', 'worker-1'))
    const dep = server.create('deployments', fresh('deployment', 'web', 'shop'))
    await h.startCollector()
    const c = h
    await waitFor('initial adds', () => c.of('k8s.pod.added').length === 1 && c.of('k8s.node.added').length === 1 && c.of('k8s.deployment.added').length === 1)
    await waitFor('synced', () => c.collector.health().details?.synced === true)
    expect(c.collector.health().status).toBe('ok')

    const u1 = server.update('pods', 'shop', 'web-1', (o) => {
      ;(o.metadata as Record<string, unknown>).labels = { app: 'web', tier: 'front' }
    })
    const p2 = server.create('pods', fresh('pod', 'web-2', 'shop'))
    server.delete('pods', 'shop', 'web-1')
    server.update('nodes', undefined, 'worker-1', (o) => {
      ;(o.metadata as Record<string, unknown>).labels = { role: 'x' }
    })
    await waitFor('all changes', () => c.of('k8s.pod.deleted').length === 1 && c.of('k8s.node.updated').length === 1)
    const counts = countBy(changeKeys(c.events))
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
    const pm = (o: Record<string, unknown>) => o.metadata as { uid: string; resourceVersion: string }
    expect(counts.get(`k8s.pod.added ${pm(pod).uid} ${pm(pod).resourceVersion}`)).toBe(1)
    expect(counts.get(`k8s.pod.updated ${pm(u1).uid} ${pm(u1).resourceVersion}`)).toBe(1)
    expect(counts.get(`k8s.pod.added ${pm(p2).uid} ${pm(p2).resourceVersion}`)).toBe(1)
    expect(c.of('k8s.deployment.added')[0]?.data).toMatchObject({ kind: 'Deployment', name: 'web', uid: pm(dep).uid })
    expect(pm(node).uid).toBe((c.of('k8s.node.updated')[0]?.data as { uid: string }).uid)

    // Watches ask for bookmarks and a server-side timeout, from the listed version.
    const watch = server.watchRequests('pods')[0]
    expect(watch?.query.allowWatchBookmarks).toBe('true')
    expect(Number(watch?.query.timeoutSeconds)).toBeGreaterThan(0)
    expect(watch?.query.resourceVersion).toMatch(/^\d+$/)
  })
})
