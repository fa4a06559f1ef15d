import { describe, expect, it } from 'vitest'
import type { Collector, SourceStatistics } from '../../src/index.js'
import { drivenManager as setup, POLICY as policy } from '../support/driven-manager.js'

/**
 * What the supervision runtime decides and shows after failures, on a driven clock: errors that
 * are not Errors, the attempts a manual restart waits for, the error kept after a recovery, the
 * restart budget per collector or across the supervisor, the stability of a fresh instance, and a
 * plain instance's own statistics across restarts.
 */
describe('errors', () => {
  it('a start rejecting with a non-Error and a health() throwing one keep their text', async () => {
    const s = setup()
    let n = 0
    const odd = (): Collector => {
      const i = ++n
      return {
        start() {
          if (i === 1) return Promise.reject('no permission')
        },
        stop() {},
        events: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<never>>(() => {}) }) }),
        health: () => {
          throw 'probe down'
        },
      }
    }
    s.mgr.addCollector('odd', odd, policy)
    const started = s.mgr.start().catch((e: unknown) => e)
    await s.clock.advanceAsync(0)
    expect(String(await started)).toContain('odd (start failed: no permission)')
    await s.clock.advanceAsync(100)
    expect(s.mgr.health().collectors.odd).toMatchObject({ status: 'recoverable_error', message: 'health() threw: probe down' })
    await s.stop()
  })

  it('the last error stays readable after the collector recovered', async () => {
    const s = setup()
    const d = s.driven('a')
    s.mgr.addCollector('a', d.factory, policy)
    await s.start()
    expect(s.mgr.health().collectors.a?.lastError).toBeNull()
    d.current?.crash()
    await s.clock.advanceAsync(100)
    expect(s.mgr.health().collectors.a).toMatchObject({ state: 'running', lastError: 'event source failed: driven a#1: crashed' })
    await s.stop()
  })

  it('escalation leaves the reason and the last error on the collector that caused it', async () => {
    const s = setup()
    const d = s.driven('a')
    s.mgr.addCollector('a', d.factory, { ...policy, maxRestarts: 0, onExceeded: 'escalate' })
    await s.start()
    d.current?.crash()
    await s.clock.advanceAsync(1000)
    expect(s.mgr.escalated).toBe('collector "a": restart intensity exceeded: 0 restarts within 60000 ms (max 0)')
    expect(s.mgr.health().collectors.a?.lastError).toBe(
      'restart intensity exceeded: 0 restarts within 60000 ms (max 0); last error: event source failed: driven a#1: crashed',
    )
    expect(s.mgr.state).toBe('stopped')
  })
})

describe('a manual restart', () => {
  it('waits for startAttempts failed starts again, also after earlier failed starts', async () => {
    const s = setup()
    const d = s.driven('a', (n) => (n >= 2 ? { failStart: true } : {}))
    s.mgr.addCollector('a', d.factory, { ...policy, startAttempts: 3, maxRestarts: 100, withinMs: 1000, backoff: { initialMs: 100, factor: 1, maxMs: 100, jitter: 0 } })
    await s.start()
    d.current?.crash()
    // Failed starts at 100, 200, 300, 400, 500.
    await s.clock.advanceAsync(550)
    expect(d.instances).toBe(6)
    let rejected: number | undefined
    void s.mgr.restartCollector('a').catch(() => (rejected = s.clock.now()))
    await s.clock.advanceAsync(0)
    expect(rejected).toBeUndefined()
    await s.clock.advanceAsync(250)
    // Its own start (at 550) and two restarts after it (650, 750): the third failure settles it.
    expect(rejected).toBe(750)
    await s.stop()
  })

  it('of a collector that had been running for long: a new instance that fails to start is a failed start', async () => {
    const s = setup()
    const d = s.driven('a', (n) => (n === 2 ? { failStart: true } : {}))
    s.mgr.addCollector('a', d.factory, { ...policy, resetAfterMs: 1000 })
    await s.start()
    await s.clock.advanceAsync(10_000)
    const restarting = s.mgr.restartCollector('a').catch((e: unknown) => e)
    await s.clock.advanceAsync(0)
    expect(String(await restarting)).toMatch(/a \(start failed: driven a#2: start failure\)/)
    expect(s.lifecycle.find((e) => e.type === 'failed')).toMatchObject({ at: 10_000, wasRunning: false })
    await s.clock.advanceAsync(100)
    expect(s.mgr.statistics().collectors.a?.state).toBe('running')
    await s.stop()
  })
})

describe('what a waiting restart learns', () => {
  it('gave up: the restart intensity ran out before startAttempts failed starts', async () => {
    const s = setup()
    const d = s.driven('a', (n) => (n >= 2 ? { failStart: true } : {}))
    s.mgr.addCollector('a', d.factory, { ...policy, startAttempts: 5, maxRestarts: 1 })
    await s.start()
    const restarting = s.mgr.restartCollector('a').catch((e: unknown) => e)
    await s.clock.advanceAsync(1000)
    expect(String(await restarting)).toBe(
      'CollectorStartError: collectors failed to start: a (gave up: restart intensity exceeded: 1 restarts within 60000 ms (max 1); last error: start failed: driven a#3: start failure)',
    )
    await s.stop()
  })

  it('stopped: an operator stopped it before it could run', async () => {
    const s = setup()
    const d = s.driven('a', (n) => (n === 2 ? { startMs: 300 } : {}))
    s.mgr.addCollector('a', d.factory, policy)
    await s.start()
    const restarting = s.mgr.restartCollector('a').catch((e: unknown) => e)
    await s.clock.advanceAsync(100)
    const stopping = s.mgr.stopCollector('a')
    await s.clock.advanceAsync(0)
    await stopping
    expect(String(await restarting)).toBe('CollectorStartError: collectors failed to start: a (stopped before it could run)')
    await s.stop()
  })
})

describe('restart budget', () => {
  it('give-up counts per collector; escalate counts the restarts of the whole supervisor', async () => {
    for (const onExceeded of ['give-up', 'escalate'] as const) {
      const s = setup()
      const a = s.driven('a')
      const b = s.driven('b')
      s.mgr.addCollector('a', a.factory, { ...policy, maxRestarts: 5, withinMs: 10_000, onExceeded })
      s.mgr.addCollector('b', b.factory, { ...policy, maxRestarts: 5, withinMs: 10_000, onExceeded })
      await s.start()
      a.current?.crash()
      await s.clock.advanceAsync(1000)
      b.current?.crash()
      await s.clock.advanceAsync(1000)
      b.current?.crash()
      await s.clock.advanceAsync(1000)
      const budget = s.mgr.health().collectors.a?.restartBudget
      expect(budget).toEqual({ maxRestarts: 5, withinMs: 10_000, used: onExceeded === 'escalate' ? 3 : 1, remaining: onExceeded === 'escalate' ? 2 : 4 })
      // The window slides: 10 s after a's restart it no longer counts.
      await s.clock.advanceAsync(7000)
      expect(s.mgr.health().collectors.a?.restartBudget.used).toBe(onExceeded === 'escalate' ? 2 : 0)
      await s.stop()
    }
  })

  it('escalate: the supervisor keeps its restarts for the longest window, whatever the other collectors\' windows', async () => {
    const s = setup()
    const y = s.driven('y')
    s.mgr.addCollector('short', s.driven('short').factory, { ...policy, withinMs: 1000 })
    s.mgr.addCollector('y', y.factory, { ...policy, maxRestarts: 2, withinMs: 60_000, onExceeded: 'escalate' })
    await s.start()
    y.current?.crash()
    await s.clock.advanceAsync(5000)
    y.current?.crash()
    await s.clock.advanceAsync(5000)
    expect(s.mgr.escalated).toBeNull()
    y.current?.crash()
    await s.clock.advanceAsync(1)
    expect(s.mgr.escalated).toMatch(/collector "y": restart intensity exceeded: 2 restarts within 60000 ms/)
    await s.clock.advanceAsync(5000)
  })
})

describe('source statistics of a plain instance', () => {
  it('readable before the first start; not counted twice when the same instance is started again', async () => {
    const s = setup()
    let produced = 0
    let fail: (() => void) | undefined
    const plain: Collector = {
      start() {},
      stop() {},
      async *events() {
        produced += 3
        yield [{ type: 'p.tick', data: {} }, { type: 'p.tick', data: {} }, { type: 'p.tick', data: {} }]
        await new Promise<void>((_, reject) => (fail = () => reject(new Error('gone'))))
      },
      statistics: (): SourceStatistics => ({ produced, dropped: {}, queued: 0, counters: { starts: produced / 3 } }),
    }
    s.mgr.addCollector('plain', plain, policy)
    expect(s.mgr.statistics().collectors.plain?.source).toEqual({ produced: 0, dropped: {}, queued: 0, counters: { starts: 0 } })
    await s.start()
    await s.clock.advanceAsync(0)
    fail?.()
    await s.clock.advanceAsync(100)
    // The instance's own figures cover its whole life: 6 produced over two runs, not 3 + 6.
    expect(s.mgr.statistics().collectors.plain).toMatchObject({ accepted: 6, restarts: 1, source: { produced: 6, counters: { starts: 2 } } })
    await s.stop()
  })
})

describe('group restarts and members out of the ordinary', () => {
  const steps = (s: ReturnType<typeof setup>) => s.log.map((h) => `${h.at} ${h.what} ${h.name}`)

  it('a given-up collector restarted by hand keeps its place in the start order and gets a fresh window', async () => {
    const s = setup({ strategy: 'rest_for_one' })
    const b = s.driven('b')
    s.mgr.addCollector('a', s.driven('a').factory, policy)
    s.mgr.addCollector('b', b.factory, { ...policy, maxRestarts: 1 })
    s.mgr.addCollector('c', s.driven('c').factory, policy)
    await s.start()
    b.current?.crash()
    await s.clock.advanceAsync(100)
    b.current?.crash()
    await s.clock.advanceAsync(100)
    expect(s.status('b')).toEqual(['gaveUp', 'permanent_error'])
    const restarting = s.mgr.restartCollector('b')
    await s.clock.advanceAsync(0)
    await restarting
    expect(s.mgr.collectorNames()).toEqual(['a', 'b', 'c'])
    expect(s.mgr.statistics().collectors.b).toMatchObject({ state: 'running', restarts: 2, manualRestarts: 1 })
    // Running again: the give-up reason is no longer its error.
    expect(s.mgr.health().collectors.b?.lastError).toBeNull()
    // A fresh window: one more automatic restart is granted, and it takes c along (b is before c).
    s.lifecycle.length = 0
    b.current?.crash()
    await s.clock.advanceAsync(100)
    expect(s.lifecycle.find((e) => e.type === 'restart-scheduled')).toMatchObject({ collector: 'b', attempt: 1, delayMs: 100, group: ['b', 'c'] })
    expect(s.status('b')).toEqual(['running', 'ok'])
    await s.stop()
  })

  it('a member that was never started does not hold up a group restart', async () => {
    const s = setup({ strategy: 'one_for_all' })
    s.mgr.addCollector('a', s.driven('a', (n) => (n === 1 ? { startMs: 50, failStart: true } : {})).factory, { ...policy, startAttempts: 2 })
    s.mgr.addCollector('b', s.driven('b').factory, policy)
    const started = s.mgr.start()
    await s.clock.advanceAsync(150)
    await started
    // a's first start fails at 50 while b was never started: a starts again after its backoff.
    expect(steps(s)).toEqual(['0 start a', '50 start-failed a', '150 start a', '150 running a', '150 start b', '150 running b'])
    await s.stop()
  })

  it('a temporary member that exits during a group restart lets the members held behind it start', async () => {
    const s = setup({ strategy: 'rest_for_one' })
    const x = s.driven('x')
    s.mgr.addCollector('x', x.factory, policy)
    s.mgr.addCollector('t', s.driven('t', (n) => (n === 2 ? { failStart: true } : {})).factory, { ...policy, restart: 'temporary' })
    s.mgr.addCollector('b', s.driven('b').factory, policy)
    await s.start()
    s.log.length = 0
    x.current?.crash()
    await s.clock.advanceAsync(100)
    expect(steps(s)).toEqual(['0 stop x', '0 stop b', '0 stop t', '100 start x', '100 running x', '100 start t', '100 start-failed t', '100 start b', '100 running b'])
    expect([s.status('t'), s.status('b')]).toEqual([['stopped', 'stopped'], ['running', 'ok']])
    expect(s.lifecycle.find((e) => e.type === 'stopped')).toMatchObject({ collector: 't', by: 'policy' })
    await s.stop()
  })
})

describe('during shutdown', () => {
  it('a collector that crashes while the others stop is not restarted and its exit is no failure', async () => {
    const s = setup()
    const a = s.driven('a')
    s.mgr.addCollector('a', a.factory, policy)
    s.mgr.addCollector('b', s.driven('b', () => ({ stopMs: 300 })).factory, policy)
    await s.start()
    // Reverse order: b stops first (300 ms); a crashes meanwhile.
    const stopping = s.mgr.stop({ timeoutMs: 5000 })
    await s.clock.advanceAsync(100)
    a.current?.crash()
    await s.clock.advanceAsync(400)
    await stopping
    expect(s.lifecycle.map((e) => e.type)).toEqual(['stopped', 'stopped'])
    expect(s.lifecycle.map((e) => e.type === 'stopped' && [e.collector, e.by, e.at])).toEqual([
      ['b', 'shutdown', 300],
      ['a', 'shutdown', 300],
    ])
    expect(a.instances).toBe(1)
  })
})
