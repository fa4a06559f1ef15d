import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { data, ip, KernelObjects, Recorder, suffix } from './helpers.js'

// Routes only through the test's own bridge (no ports, so nothing leaves it), 198.18.0.0/15.
const objects = new KernelObjects()
const collectors: CniCollector[] = []
afterAll(async () => {
  for (const c of collectors) await c.stop()
  objects.cleanup()
})

describe('cni collector: routes (netlink.routes: true)', () => {
  it('reports routes added and removed, including IPv4 routes the kernel drops silently on link down', async () => {
    const s = suffix()
    const br = objects.link(`tprt${s}`)
    const x = String(parseInt(s.slice(0, 2), 16))
    const c = new CniCollector({ netlink: { routes: true }, cniConfig: { enabled: false }, cniResults: { enabled: false }, netns: { enabled: false } })
    collectors.push(c)
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    try {
      const dflt = await rec.waitFor((e) => e.type === 'network.route.added' && data(e).snapshot === true, 'routes in the initial dump')
      expect(data(dflt.event)).toMatchObject({ table: 'main', type: 'unicast' })

      ip('link', 'add', br, 'type', 'bridge')
      ip('link', 'set', br, 'up')
      ip('addr', 'add', `198.18.${x}.1/24`, 'dev', br)
      ip('route', 'add', `198.19.${x}.0/24`, 'via', `198.18.${x}.2`, 'dev', br)
      const connected = await rec.waitFor((e) => e.type === 'network.route.added' && data(e).destination === `198.18.${x}.0/24`, 'connected route')
      expect(data(connected.event)).toMatchObject({ family: 'ipv4', link: br, protocol: 'kernel', scope: 'link', table: 'main' })
      const via = await rec.waitFor((e) => e.type === 'network.route.added' && data(e).destination === `198.19.${x}.0/24`, 'route via a gateway')
      expect(data(via.event)).toMatchObject({ family: 'ipv4', gateway: `198.18.${x}.2`, link: br, protocol: 'boot', scope: 'global' })
      expect(via.event.entity).toEqual({ kind: 'network-interface', name: br })

      // The kernel removes both without RTM_DELROUTE; the collector finds out by dumping again.
      const at = rec.events.length
      ip('link', 'set', br, 'down')
      await rec.waitFor((e) => e.type === 'network.route.removed' && data(e).destination === `198.19.${x}.0/24`, 'gateway route gone', at)
      await rec.waitFor((e) => e.type === 'network.route.removed' && data(e).destination === `198.18.${x}.0/24`, 'connected route gone', at)
      expect(c.statistics().counters.routeRechecks).toBeGreaterThanOrEqual(1)
      ip('link', 'del', br)
      await rec.waitFor((e) => e.type === 'network.link.removed' && data(e).name === br, 'bridge removed', at)
      // Each route reported removed exactly once.
      for (const d of [`198.18.${x}.0/24`, `198.19.${x}.0/24`]) expect(rec.of('network.route.removed', (r) => r.destination === d)).toHaveLength(1)
      expect(rec.error).toBeUndefined()
    } finally {
      await c.stop()
      objects.cleanup()
    }
  })
})
