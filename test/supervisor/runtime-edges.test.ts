import { describe, expect, it } from 'vitest'
import type { Collector, LifecycleEvent } from '../../src/index.js'
import type { Driven } from '../support/driven.js'
import { drivenManager, POLICY } from '../support/driven-manager.js'

/**
 * The supervision runtime's smaller promises on a driven clock: the status each lifecycle state
 * shows, listeners that throw or unsubscribe, every timer released at stop, health read only from a
 * running instance and forgotten with it, a late start released, downtime measured.
 */
const policy = POLICY
const setup = drivenManager

describe('the status each lifecycle state shows', () => {
  it('idle, starting, running, restarting, stopping, stopped, gave up', async () => {
    const s = setup()
    // Instance 2 starts slowly, instance 3 hangs in stop.
    const d = s.driven('a', (n) => (n === 2 ? { startMs: 200 } : n === 3 ? { stopMs: Infinity } : {}))
    s.mgr.addCollector('a', d.factory, { ...policy, maxRestarts: 2 })
    expect(s.status('a')).toEqual(['idle', 'stopped'])
    await s.start()
    expect(s.status('a')).toEqual(['running', 'ok'])
    d.current?.crash()
    await s.clock.advanceAsync(50)
    expect(s.status('a')).toEqual(['restarting', 'recoverable_error'])
    await s.clock.advanceAsync(100)
    expect(s.status('a')).toEqual(['starting', 'starting'])
    await s.clock.advanceAsync(200)
    expect(s.status('a')).toEqual(['running', 'ok'])
    const restarting = s.mgr.restartCollector('a')
    await s.clock.advanceAsync(0)
    await restarting
    expect(d.instances).toBe(3)
    const stopping = s.mgr.stopCollector('a')
    await s.clock.advanceAsync(10)
    expect(s.status('a')).toEqual(['stopping', 'stopping'])
    await s.clock.advanceAsync(500)
    await stopping
    expect(s.status('a')).toEqual(['stopped', 'stopped'])
    expect(s.lifecycle.filter((e) => e.type === 'stopped')).toEqual([{ type: 'stopped', collector: 'a', at: 850, by: 'operator', forced: true }])
    await s.stop()
  })

  it('a collector suspended by a group restart shows recoverable_error until its turn', async () => {
    const g = setup({ strategy: 'one_for_all' })
    const x = g.driven('x')
    const y = g.driven('y', (n) => (n === 2 ? { startMs: 300 } : {}))
    g.mgr.addCollector('x', x.factory, policy)
    g.mgr.addCollector('y', y.factory, policy)
    await g.start()
    x.current?.crash()
    await g.clock.advanceAsync(50)
    expect(g.status('y')).toEqual(['suspended', 'recoverable_error'])
    // The failed one waits its backoff held like the rest of the group.
    expect(g.status('x')).toEqual(['suspended', 'recoverable_error'])
    await g.clock.advanceAsync(50)
    // x runs again; y is starting behind it.
    expect(g.status('x')).toEqual(['running', 'ok'])
    expect(g.status('y')).toEqual(['starting', 'starting'])
    await g.stop()
  })

  it('given up shows permanent_error, and the members held behind it start again at once', async () => {
    const s = setup({ strategy: 'rest_for_one' })
    const a = s.driven('a')
    s.mgr.addCollector('a', a.factory, { ...policy, maxRestarts: 0 })
    s.mgr.addCollector('b', s.driven('b').factory, policy)
    await s.start()
    s.mgr.addCollector('c', s.driven('c').factory, policy)
    await s.clock.advanceAsync(0)
    a.current?.crash()
    await s.clock.advanceAsync(0)
    expect(s.status('a')).toEqual(['gaveUp', 'permanent_error'])
    expect(s.status('b')).toEqual(['running', 'ok'])
    expect(s.status('c')).toEqual(['running', 'ok'])
    await s.stop()
  })
})

describe('lifecycle listeners', () => {
  it('a throwing listener goes to onError and does not keep the others from their events; unsubscribe ends delivery', async () => {
    const s = setup()
    const boom = new Error('listener boom')
    s.mgr.on('lifecycle', () => {
      throw boom
    })
    const second: LifecycleEvent[] = []
    const off = s.mgr.on('lifecycle', (e) => second.push(e))
    const d = s.driven('a')
    s.mgr.addCollector('a', d.factory, policy)
    await s.start()
    d.current?.crash()
    await s.clock.advanceAsync(100)
    expect(second.map((e) => e.type)).toEqual(['failed', 'restart-scheduled', 'recovered'])
    expect(s.lifecycle.map((e) => e.type)).toEqual(['failed', 'restart-scheduled', 'recovered'])
    expect(s.errors).toEqual([boom, boom, boom])
    off()
    d.current?.crash()
    await s.clock.advanceAsync(200)
    expect(second.length).toBe(3)
    expect(s.lifecycle.length).toBe(6)
    await s.stop()
  })
})

describe('timers', () => {
  it('stop() releases every timer: the health check is not armed again', async () => {
    const s = setup()
    for (const n of ['a', 'b']) s.mgr.addCollector(n, s.driven(n).factory, policy)
    await s.start()
    await s.clock.advanceAsync(3500)
    expect(s.clock.pending).toBeGreaterThan(0)
    await s.stop()
    expect(s.clock.pending).toBe(0)
    await s.clock.advanceAsync(10_000)
    expect(s.clock.pending).toBe(0)
  })

  it('a manager never started arms no health check', async () => {
    const s = setup()
    s.mgr.addCollector('a', s.driven('a').factory, policy)
    expect(s.clock.pending).toBe(0)
    await s.stop()
    expect(s.clock.pending).toBe(0)
  })
})

describe('health', () => {
  it('is read only from a running instance, every interval', async () => {
    const s = setup()
    const reads: number[] = []
    const d = s.driven('a', (n) => (n === 1 ? { startMs: 2500 } : {}))
    s.mgr.addCollector('a', () => Object.assign(d.factory(), { health: () => (reads.push(s.clock.now()), { status: 'ok' as const }) }), { ...policy, startTimeoutMs: 10_000 })
    const started = s.mgr.start()
    await s.clock.advanceAsync(2500)
    await started
    // The checks at 1000 and 2000 found it starting: not read.
    expect(reads).toEqual([])
    await s.clock.advanceAsync(2500)
    expect(reads).toEqual([3000, 4000, 5000])
    await s.stop()
  })

  it('a fatal_error without a message says so; a new instance does not inherit the old one\'s health', async () => {
    const s = setup()
    const d = s.driven('a')
    const health = new Map<number, () => { status: 'degraded' | 'fatal_error' | 'ok'; message?: string }>([
      [1, () => ({ status: 'degraded', message: 'slow disk' })],
    ])
    s.mgr.addCollector('a', () => {
      const inst = d.factory()
      const n = d.instances
      return Object.assign(inst, { health: () => (health.get(n) ?? (() => ({ status: 'ok' as const })))() })
    }, policy)
    await s.start()
    await s.clock.advanceAsync(1000)
    expect(s.status('a')).toEqual(['running', 'degraded'])
    d.current?.crash()
    await s.clock.advanceAsync(100)
    // statistics() does not read health: the new instance has not been checked yet.
    expect(s.status('a')).toEqual(['running', 'ok'])
    health.set(2, () => ({ status: 'fatal_error' }))
    await s.clock.advanceAsync(900)
    expect(s.lifecycle.filter((e) => e.type === 'failed').map((e) => e.type === 'failed' && e.error)).toEqual([
      'event source failed: driven a#1: crashed',
      'collector reported fatal_error: no message',
    ])
    await s.stop()
  })
})

describe('starts', () => {
  it('a start that ignores its abort and finishes after the timeout is released (its stop is called)', async () => {
    const s = setup()
    const calls: string[] = []
    let n = 0
    const late = (): Collector => {
      const i = ++n
      return {
        async start() {
          calls.push(`${s.clock.now()} start#${i}`)
          if (i === 1) await new Promise<void>((r) => s.clock.setTimeout(r, 800))
        },
        stop() {
          calls.push(`${s.clock.now()} stop#${i}`)
        },
        async *events() {
          await new Promise(() => {})
        },
      }
    }
    s.mgr.addCollector('late', late, { ...policy, startAttempts: 1 })
    const started = s.mgr.start().catch((e: unknown) => e)
    await s.clock.advanceAsync(500)
    expect(String(await started)).toMatch(/late \(start timed out after 500 ms\)/)
    // Released when its start timed out (a start should honour its signal)...
    expect(calls).toEqual(['0 start#1', '500 stop#1'])
    await s.clock.advanceAsync(300)
    // ...and again once its start did finish, at 800: what the late start acquired is released.
    // The restart (after the 100 ms backoff) runs meanwhile.
    expect(calls).toEqual(['0 start#1', '500 stop#1', '600 start#2', '800 stop#1'])
    expect(s.status('late')).toEqual(['running', 'ok'])
    expect(s.lifecycle.find((e) => e.type === 'failed')).toMatchObject({ at: 500, wasRunning: false, error: 'start timed out after 500 ms' })
    await s.stop()
  })

  it('failed tells a failed start from a crash; recovered measures the downtime from the failure or the manual restart', async () => {
    const s = setup()
    const d = s.driven('a', (n) => (n === 2 ? { failStart: true } : n === 3 ? { startMs: 40 } : n === 4 ? { startMs: 70 } : {}))
    s.mgr.addCollector('a', d.factory, policy)
    await s.start()
    await s.clock.advanceAsync(1000)
    d.current?.crash()
    // 100 ms backoff, the start fails, 200 ms backoff, a start of 40 ms.
    await s.clock.advanceAsync(1000)
    expect(s.lifecycle.filter((e) => e.type === 'failed').map((e) => e.type === 'failed' && [e.at, e.wasRunning])).toEqual([
      [1000, true],
      [1100, false],
    ])
    expect(s.lifecycle.filter((e) => e.type === 'recovered')).toEqual([{ type: 'recovered', collector: 'a', at: 1340, downMs: 340, restarts: 2 }])
    const restarting = s.mgr.restartCollector('a')
    await s.clock.advanceAsync(70)
    await restarting
    expect(s.lifecycle.filter((e) => e.type === 'manual-restart')).toEqual([{ type: 'manual-restart', collector: 'a', at: 2000 }])
    expect(s.lifecycle.filter((e) => e.type === 'recovered').at(-1)).toEqual({ type: 'recovered', collector: 'a', at: 2070, downMs: 70, restarts: 3 })
    await s.stop()
  })
})

describe('start() and an operator who is quicker', () => {
  it('start() is not held up by a collector an operator started before its turn', async () => {
    const s = setup()
    s.mgr.addCollector('a', s.driven('a', () => ({ startMs: 100 })).factory, policy)
    s.mgr.addCollector('b', s.driven('b').factory, policy)
    let started = false
    const starting = s.mgr.start().then(() => (started = true))
    await s.clock.advanceAsync(10)
    const restarting = s.mgr.restartCollector('b')
    await s.clock.advanceAsync(0)
    await restarting
    // b was idle: started, not restarted.
    expect(s.lifecycle.filter((e) => e.type === 'manual-restart')).toEqual([])
    expect(s.mgr.statistics().collectors.b).toMatchObject({ state: 'running', restarts: 0, manualRestarts: 0 })
    await s.clock.advanceAsync(90)
    await starting
    expect(started).toBe(true)
    expect(s.log.filter((h) => h.what === 'start').map((h) => `${h.at} ${h.name}`)).toEqual(['0 a', '10 b'])
    await s.stop()
  })

  it('one the operator started and that was given up on before its turn is started afresh by start()', async () => {
    const s = setup()
    const b = s.driven('b', (n) => (n <= 2 ? { failStart: true } : {}))
    s.mgr.addCollector('a', s.driven('a', () => ({ startMs: 1000 })).factory, { ...policy, startTimeoutMs: 5000 })
    s.mgr.addCollector('b', b.factory, { ...policy, maxRestarts: 1 })
    const starting = s.mgr.start().catch((e: unknown) => e)
    await s.clock.advanceAsync(10)
    const restarting = s.mgr.restartCollector('b').catch((e: unknown) => e)
    await s.clock.advanceAsync(200)
    expect(String(await restarting)).toMatch(/b \(start failed: driven b#1: start failure\)/)
    expect(s.status('b')).toEqual(['gaveUp', 'permanent_error'])
    await s.clock.advanceAsync(790)
    expect(await starting).toBeUndefined()
    expect(b.instances).toBe(3)
    expect(s.mgr.statistics().collectors.b).toMatchObject({ state: 'running', restarts: 2, manualRestarts: 0 })
    await s.stop()
  })
})

describe('stopping', () => {
  it('a stop that outlives its timeout: the instance\'s source is no longer read', async () => {
    const s = setup()
    let push: ((n: number) => void) | undefined
    const hung: Collector = {
      start() {},
      stop: () => new Promise(() => {}),
      async *events() {
        const queue: number[] = []
        let wake: (() => void) | undefined
        push = (n) => {
          queue.push(n)
          wake?.()
        }
        for (;;) {
          while (queue.length > 0) {
            const n = queue.shift() as number
            yield Array.from({ length: n }, (_, i) => ({ type: 'hung.tick', data: { i } }))
          }
          await new Promise<void>((r) => (wake = r))
        }
      },
    }
    s.mgr.addCollector('hung', hung, policy)
    await s.start()
    push?.(3)
    await s.clock.advanceAsync(0)
    const stopping = s.mgr.stopCollector('hung')
    await s.clock.advanceAsync(100)
    push?.(4)
    await s.clock.advanceAsync(0)
    // Still stopping: what it produces meanwhile is taken.
    expect(s.mgr.statistics().collectors.hung?.accepted).toBe(7)
    await s.clock.advanceAsync(400)
    await stopping
    expect(s.lifecycle.find((e) => e.type === 'stopped')).toMatchObject({ at: 500, forced: true })
    push?.(5)
    await s.clock.advanceAsync(100)
    expect(s.mgr.statistics().collectors.hung?.accepted).toBe(7)
    await s.stop()
  })

  it('a stop waits for the source to end: a final batch flushed after stop() is taken before stopped', async () => {
    const s = setup()
    let stopped = false
    let wake: (() => void) | undefined
    const flushing: Collector = {
      start() {},
      stop() {
        stopped = true
        wake?.()
      },
      async *events() {
        while (!stopped) await new Promise<void>((r) => (wake = r))
        await new Promise<void>((r) => s.clock.setTimeout(r, 50))
        yield [{ type: 'f.final', data: {} }, { type: 'f.final', data: {} }]
      },
    }
    s.mgr.addCollector('f', flushing, policy)
    await s.start()
    await s.clock.advanceAsync(1000)
    const stopping = s.mgr.stopCollector('f')
    await s.clock.advanceAsync(50)
    await stopping
    expect(s.lifecycle.find((e) => e.type === 'stopped')).toMatchObject({ at: 1050, forced: false })
    expect(s.mgr.statistics().collectors.f?.accepted).toBe(2)
    await s.stop()
  })

  it('what a collector produces while it stops is still delivered', async () => {
    const s = setup()
    const got: unknown[] = []
    const reading = (async () => {
      for await (const e of s.mgr.events()) got.push(e)
    })()
    const d = s.driven('a', () => ({ stopMs: 300 }))
    s.mgr.addCollector('a', d.factory, policy)
    await s.start()
    d.current?.emit(2)
    const inst = d.current
    const stopping = s.mgr.stopCollector('a')
    await s.clock.advanceAsync(0)
    expect(inst).toBeDefined()
    await s.clock.advanceAsync(300)
    await stopping
    expect(s.mgr.statistics().collectors.a?.accepted).toBe(2)
    await s.stop()
    await reading
    expect(got.length).toBe(2)
  })
})

describe('source statistics', () => {
  it('a collector whose statistics() throws or has the wrong shape shows none; nothing breaks', async () => {
    const s = setup()
    const throwing = Object.assign(s.driven('t').factory(), {
      statistics: () => {
        throw new Error('stats boom')
      },
    })
    const odd = Object.assign(s.driven('o').factory(), { statistics: () => ({ produced: 1 }) as never })
    s.mgr.addCollector('t', throwing, policy)
    s.mgr.addCollector('o', odd, policy)
    s.mgr.addCollector('g', s.driven('g').factory, policy)
    await s.start()
    const st = s.mgr.statistics().collectors
    expect(st.t && 'source' in st.t).toBe(false)
    expect(st.o && 'source' in st.o).toBe(false)
    expect(st.g?.source).toEqual({ produced: 0, dropped: {}, queued: 0, counters: {} })
    expect(s.errors).toEqual([])
    await s.stop()
  })
})

describe('group restarts leave stopped and given-up members as they are', () => {
  it('one_for_all with a stopped and a given-up member: the others restart, those two stay down', async () => {
    const s = setup({ strategy: 'one_for_all' })
    const d: Record<string, Driven> = {}
    for (const n of ['a', 'b', 'c', 'd']) {
      d[n] = s.driven(n)
      s.mgr.addCollector(n, d[n].factory, n === 'c' ? { ...policy, maxRestarts: 0 } : policy)
    }
    await s.start()
    const stopping = s.mgr.stopCollector('b')
    await s.clock.advanceAsync(0)
    await stopping
    d.c?.current?.crash()
    await s.clock.advanceAsync(0)
    expect(s.status('c')).toEqual(['gaveUp', 'permanent_error'])
    s.log.length = 0
    const t = s.clock.now()
    d.d?.current?.crash()
    await s.clock.advanceAsync(100)
    expect(s.log.map((h) => `${h.at - t} ${h.what} ${h.name}`)).toEqual(['0 stop d', '0 stop a', '100 start a', '100 running a', '100 start d', '100 running d'])
    expect([s.status('b'), s.status('c')]).toEqual([['stopped', 'stopped'], ['gaveUp', 'permanent_error']])
    await s.stop()
  })
})

describe('state names', () => {
  it('health() names nested states in full', async () => {
    const s = setup({ strategy: 'one_for_all' })
    const a = s.driven('a')
    s.mgr.addCollector('a', a.factory, policy)
    s.mgr.addCollector('b', s.driven('b').factory, policy)
    await s.start()
    expect(s.mgr.health().collectors.a?.state).toBe('running')
    a.current?.crash()
    await s.clock.advanceAsync(10)
    expect([s.mgr.health().collectors.a?.state, s.mgr.health().collectors.b?.state]).toEqual(['suspended.held', 'suspended.held'])
    expect(s.mgr.actors().map((x) => x.state)).toEqual(['running', 'suspended.held', 'suspended.held'])
    await s.stop()
  })
})
