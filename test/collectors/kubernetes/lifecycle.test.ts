import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { detectKubernetes, KubernetesCollector, KubeApiError } from '../../../src/collectors/kubernetes/index.js'
import type { CollectorOutput } from '../../../src/core/collector.js'
import { createHarness, fresh, type Harness, waitFor } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

async function collect(iterable: AsyncIterable<CollectorOutput>): Promise<number> {
  let n = 0
  for await (const item of iterable) n += Array.isArray(item) ? item.length : 1
  return n
}

describe('kubernetes collector: lifecycle contract', () => {
  it('a stop clears the metadata cache and a new start lists again (the contract itself: conformance.test.ts)', async () => {
    h = await createHarness()
    const s = h.server
    s.create('pods', fresh('pod', 'p', 'shop'))
    const collector = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'fake', resources: ['pods'] })
    for (let round = 1; round <= 2; round++) {
      await collector.start(new AbortController().signal)
      const counted = collect(collector.events())
      await waitFor('synced', () => collector.health().details?.synced === true && s.openWatches === 1)
      expect(collector.metadata.size.pods).toBe(1)
      await collector.stop()
      expect(await counted).toBe(1)
      await waitFor('server sees the watch closed', () => s.openWatches === 0)
      expect(collector.metadata.size.pods).toBe(0)
    }
    expect(s.listRequests('pods')).toHaveLength(2)
    // Counters are kept across stop and restart.
    expect(collector.statistics().counters.lists).toBe(2)
  })

  it('stop() during a stalled list or watch returns promptly and leaves no request open', async () => {
    h = await createHarness()
    const s = h.server
    s.injectFault({ kind: 'stallHeaders', verb: 'list' })
    const collector = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'fake', resources: ['pods'] })
    await collector.start(new AbortController().signal)
    await waitFor('list in flight', () => s.listRequests('pods').length === 1)
    await collector.stop()
    await waitFor('no connection left', () => s.connections === 0)
    s.injectFault({ kind: 'stallHeaders' })
    await collector.start(new AbortController().signal)
    await waitFor('watch in flight', () => s.watchRequests('pods').length === 1)
    await collector.stop()
    await waitFor('no connection left', () => s.connections === 0)
    expect(collector.health()).toMatchObject({ status: 'ok', message: 'stopped' })
  })

  it('start() refuses an aborted signal, a missing context and a bad config, with clear messages', async () => {
    h = await createHarness()
    const aborted = new AbortController()
    aborted.abort(new Error('start timed out'))
    const collector = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'fake' })
    await expect(collector.start(aborted.signal)).rejects.toThrow('start timed out')
    const wrong = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'nope' })
    await expect(wrong.start(new AbortController().signal)).rejects.toThrow(KubeApiError)
    await expect(wrong.start(new AbortController().signal)).rejects.toThrow('kubeconfig has no context "nope" (known: fake, other)')
    expect(() => new KubernetesCollector({ resources: ['pods', 'secrets'] })).toThrow(/at \["resources"\]\[1\]/)
  })

  it('talks to the current context of a kubeconfig when no context is named', async () => {
    h = await createHarness()
    // The fixture kubeconfig's current context points nowhere: this proves the named context is used elsewhere.
    const collector = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, resources: ['nodes'], backoff: { initialMs: 50, maxMs: 100 } })
    await collector.start(new AbortController().signal)
    try {
      await waitFor('unreachable', () => collector.health().status === 'recoverable_error')
      expect(collector.health().message).toMatch(/nodes/)
      expect(h.server.requests).toHaveLength(0)
    } finally {
      await collector.stop()
    }
  })
})

describe('detectKubernetes', () => {
  it('finds KUBECONFIG, ~/.kube/config or in-cluster config, and says why not otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s-detect-'))
    try {
      const cfg = join(dir, 'config')
      writeFileSync(cfg, 'apiVersion: v1\nkind: Config\n')
      const token = join(dir, 'token')
      writeFileSync(token, 'x')
      const none = { env: {}, home: join(dir, 'nohome'), tokenPath: join(dir, 'missing') }
      expect(await detectKubernetes(none)).toEqual({ supported: false, reason: 'no kubeconfig or in-cluster config' })
      expect(await detectKubernetes({ ...none, env: { KUBECONFIG: cfg } })).toMatchObject({ supported: true })
      expect(await detectKubernetes({ ...none, env: { KUBECONFIG: join(dir, 'absent') } })).toMatchObject({ supported: false })
      const home = join(dir, 'home')
      const { mkdirSync } = await import('node:fs')
      mkdirSync(join(home, '.kube'), { recursive: true })
      writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\n')
      expect(await detectKubernetes({ ...none, home })).toMatchObject({ supported: true, reason: `kubeconfig ${join(home, '.kube', 'config')}` })
      expect(await detectKubernetes({ ...none, env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' } })).toMatchObject({ supported: false })
      expect(await detectKubernetes({ ...none, env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, tokenPath: token })).toMatchObject({
        supported: true,
        reason: 'in-cluster config (KUBERNETES_SERVICE_HOST=10.96.0.1)',
      })
      expect(await detectKubernetes({ ...none, kubeconfig: cfg })).toMatchObject({ supported: true })
      expect(await detectKubernetes({ ...none, inCluster: true })).toMatchObject({ supported: false })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('kubernetes collector: bounded queue for a slow consumer', () => {
  it('drops and counts events beyond maxQueuedEvents, delivering the rest as one batch', async () => {
    h = await createHarness()
    const s = h.server
    for (let i = 0; i < 20; i++) s.create('pods', fresh('pod', `p-${i}`, 'shop'))
    const collector = new KubernetesCollector({ kubeconfig: h.kubeconfigPath, context: 'fake', resources: ['pods'], maxQueuedEvents: 5 })
    await collector.start(new AbortController().signal)
    try {
      await waitFor('listed', () => collector.health().details?.synced === true)
      expect(collector.statistics()).toMatchObject({ produced: 20, dropped: { queue_full: 15 }, queued: 5 })
      const it = collector.events()[Symbol.asyncIterator]()
      const first = await it.next()
      expect(Array.isArray(first.value) ? first.value.length : 0).toBe(5)
      await collector.stop()
      expect((await it.next()).done).toBe(true)
    } finally {
      await collector.stop()
    }
  })
})
