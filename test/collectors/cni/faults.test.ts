import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector, detectCni } from '../../../src/collectors/cni/index.js'
import { eventually, Recorder } from './helpers.js'

const fakePath = fileURLToPath(new URL('./fake-addon.cjs', import.meta.url))
const fake = createRequire(import.meta.url)(fakePath) as {
  state: { mode: 'ok' | 'eperm'; handles: { closed: boolean; die(errno: number): void }[] }
}

const collectors: CniCollector[] = []
afterAll(async () => {
  for (const c of collectors) await c.stop()
})

function make(mode: 'required' | 'optional' = 'required'): CniCollector {
  const c = new CniCollector({ netlink: { mode, addonPath: fakePath }, cniConfig: { enabled: false }, cniResults: { enabled: false }, netns: { enabled: false } })
  collectors.push(c)
  return c
}

describe('cni collector: netlink faults (injected through a stand-in addon)', () => {
  it('a refused netlink socket: start fails with the reason and the fix, detect says the same', async () => {
    fake.state.mode = 'eperm'
    try {
      const c = make()
      await expect(c.start(AbortSignal.timeout(10_000))).rejects.toThrow(/^unavailable: cannot open a NETLINK_ROUTE socket \(EPERM\): .*allow netlink sockets/)
      expect(c.health()).toMatchObject({ status: 'permanent_error', message: expect.stringContaining('EPERM') })
      expect(await detectCni({ netlink: { addonPath: fakePath } })).toMatchObject({ supported: false, reason: expect.stringContaining('EPERM') })
      const optional = make('optional')
      await optional.start(AbortSignal.timeout(10_000))
      expect(optional.health()).toMatchObject({ status: 'recoverable_error', message: expect.stringMatching(/^degraded: .*EPERM/) })
      await optional.stop()
    } finally {
      fake.state.mode = 'ok'
    }
  })

  it('the reader dying makes events() throw with a clear message; stop still cleans up', async () => {
    const c = make()
    await c.start(AbortSignal.timeout(10_000))
    const rec = new Recorder(c)
    const handle = fake.state.handles.at(-1)
    if (!handle) throw new Error('the stand-in addon was not opened')
    handle.die(5)
    await rec.done
    expect(String(rec.error)).toMatch(/netlink stopped: recv failed: EIO/)
    expect(c.health()).toMatchObject({ status: 'recoverable_error', message: expect.stringContaining('EIO') })
    await c.stop()
    expect(handle.closed).toBe(true)
    // The same instance starts again (the supervisor's restart).
    await c.start(AbortSignal.timeout(10_000))
    expect(c.health().status).toBe('ok')
    await c.stop()
    await eventually(() => fake.state.handles.every((h) => h.closed), 'every stand-in socket closed')
  })
})
