import { describe, expect, it } from 'vitest'
import { createActor, fromPromise } from 'xstate'
import { collectorLifecycleMachine, type CollectorLifecycleEvent, type InstanceRef } from '../../machines/collector-lifecycle.js'
import { ManualClock } from '../../src/core/clock.js'

/**
 * The lifecycle machine on its own, on a driven clock: the runtime's start/stop are replaced by
 * promises the test settles, notifications to the parent are recorded.
 */
function harness(opts: { startTimeoutMs?: number; stopTimeoutMs?: number; restarts?: number; manualRestarts?: number } = {}) {
  const clock = new ManualClock(0)
  const notes: string[] = []
  const starts: { ref: InstanceRef; resolve: () => void; reject: (e: unknown) => void }[] = []
  const stops: { ref: InstanceRef; resolve: () => void; reject: (e: unknown) => void }[] = []
  const pending = <T extends { ref: InstanceRef }>(list: (T & { resolve: () => void; reject: (e: unknown) => void })[], ref: InstanceRef) =>
    new Promise<void>((resolve, reject) => list.push({ ref, resolve, reject } as T & { resolve: () => void; reject: (e: unknown) => void }))
  const machine = collectorLifecycleMachine.provide({
    actors: {
      startCollector: fromPromise<void, InstanceRef>(({ input }) => pending(starts, input)),
      stopCollector: fromPromise<void, InstanceRef>(({ input }) => pending(stops, input)),
    },
    actions: {
      notifyRunning: ({ context }) => notes.push(`running#${context.generation}`),
      notifyExited: ({ context }) => notes.push(`exited:${context.exit}:${context.lastError}`),
      notifyStopped: ({ context }) => notes.push(`stopped:${context.lastStopForced}`),
      notifyGaveUp: ({ context }) => notes.push(`gaveUp:${context.gaveUpReason}`),
    },
  })
  const actor = createActor(machine, {
    clock,
    input: {
      name: 'c',
      startTimeoutMs: opts.startTimeoutMs ?? 1000,
      stopTimeoutMs: opts.stopTimeoutMs ?? 500,
      ...(opts.restarts !== undefined ? { restarts: opts.restarts } : {}),
      ...(opts.manualRestarts !== undefined ? { manualRestarts: opts.manualRestarts } : {}),
    },
  })
  actor.start()
  const state = () => {
    const v = actor.getSnapshot().value
    return typeof v === 'string' ? v : Object.entries(v).map(([k, s]) => `${k}.${String(s)}`)[0]
  }
  const send = (e: CollectorLifecycleEvent) => actor.send(e)
  const ctx = () => actor.getSnapshot().context
  const settle = () => clock.advanceAsync(0)
  /** Start and reach running. */
  const run = async () => {
    send({ type: 'START' })
    starts.at(-1)?.resolve()
    await settle()
  }
  return { clock, actor, notes, starts, stops, state, send, ctx, settle, run }
}

describe('collector lifecycle machine (driven clock)', () => {
  it('waits exactly the delay the supervisor gave before starting again, and counts the restart', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'SOURCE_FAILED', generation: 1, error: 'boom' })
    expect(h.state()).toBe('failed.releasing')
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.notes.at(-1)).toBe('exited:failure:boom')
    h.send({ type: 'RESTART_AFTER', delayMs: 700 })
    await h.clock.advanceAsync(699)
    expect(h.state()).toBe('restarting.waiting')
    expect(h.ctx().restarts).toBe(0)
    await h.clock.advanceAsync(1)
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 1, manualRestarts: 0, generation: 2, restartDelayMs: 700 })
  })

  it('a negative delay from the supervisor means at once', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'SOURCE_ENDED', generation: 1 })
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.ctx().exit).toBe('normal')
    expect(h.notes.at(-1)).toBe('exited:normal:event source ended')
    h.send({ type: 'RESTART_AFTER', delayMs: -5 })
    await h.settle()
    expect(h.state()).toBe('starting')
  })

  it('a manual restart from running does not wait the previous backoff; it counts as manual', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'FAULT', generation: 1, error: 'fatal: disk gone' })
    expect(h.ctx().lastError).toBe('fatal: disk gone')
    h.stops.at(-1)?.resolve()
    await h.settle()
    // A fault is a failure, like a crash.
    expect(h.notes.at(-1)).toBe('exited:failure:fatal: disk gone')
    h.send({ type: 'RESTART_AFTER', delayMs: 1000 })
    await h.clock.advanceAsync(1000)
    h.starts.at(-1)?.resolve()
    await h.settle()
    expect(h.state()).toBe('running')
    h.send({ type: 'RESTART' })
    expect(h.state()).toBe('restarting.releasing')
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 2, manualRestarts: 1, restartDelayMs: 0 })
  })

  it('a manual restart while starting (after an automatic backoff): the start is released, the new one goes at once', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'SOURCE_FAILED', generation: 1, error: 'boom' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART_AFTER', delayMs: 1000 })
    await h.clock.advanceAsync(1000)
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ generation: 2, restarts: 1, restartDelayMs: 1000 })
    h.send({ type: 'RESTART' })
    expect(h.state()).toBe('restarting.releasing')
    expect(h.stops.at(-1)?.ref).toEqual({ name: 'c', generation: 2 })
    h.stops.at(-1)?.resolve()
    await h.settle()
    // No wait of the earlier 1000 ms: the new instance starts at once, counted manual.
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ generation: 3, restarts: 2, manualRestarts: 1, restartDelayMs: 0 })
  })

  it('RESTART in failed.released restarts at once; in restarting.waiting it cuts the wait', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'SOURCE_FAILED', generation: 1, error: 'x' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.state()).toBe('failed.released')
    h.send({ type: 'RESTART' })
    await h.settle()
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 1, manualRestarts: 1 })
    h.starts.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'SOURCE_FAILED', generation: 2, error: 'y' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART_AFTER', delayMs: 60_000 })
    h.send({ type: 'RESTART' })
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 2, manualRestarts: 2 })
    // After an automatic restart with a backoff, a manual one from failed.released still goes at once.
    h.starts.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'SOURCE_FAILED', generation: 3, error: 'z' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART' })
    await h.settle()
    expect(h.state()).toBe('starting')
    expect(h.ctx().restartDelayMs).toBe(0)
  })

  it('a stopped collector can start again (START) or be restarted (RESTART, counted manual)', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'STOP' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.state()).toBe('stopped')
    expect(h.notes.at(-1)).toBe('stopped:false')
    h.send({ type: 'START' })
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 0, generation: 2 })
    h.starts.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'STOP' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART' })
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 1, manualRestarts: 1, generation: 3 })
  })

  it('a collector stopped before it ever started: stopped at once, not forced, nothing to release', async () => {
    const h = harness()
    h.send({ type: 'STOP' })
    await h.settle()
    expect(h.state()).toBe('stopped')
    expect(h.notes).toEqual(['stopped:false'])
    expect(h.stops).toEqual([])
    expect(h.ctx()).toMatchObject({ generation: 0, lastStopForced: false, forcedStops: 0, restarts: 0 })
  })

  it('a stop that throws ends at once in stopped, not forced, with its error', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'STOP' })
    h.stops.at(-1)?.reject(new Error('bus gone'))
    await h.settle()
    expect(h.state()).toBe('stopped')
    expect(h.clock.now()).toBe(0)
    expect(h.ctx()).toMatchObject({ lastError: 'stop failed: bus gone', forcedStops: 0, lastStopForced: false })
    expect(h.notes.at(-1)).toBe('stopped:false')
  })

  it('a stop that hangs is abandoned after stopTimeoutMs: forced, counted, said so', async () => {
    const h = harness({ stopTimeoutMs: 250 })
    await h.run()
    h.send({ type: 'STOP' })
    await h.clock.advanceAsync(249)
    expect(h.state()).toBe('stopping')
    await h.clock.advanceAsync(1)
    expect(h.state()).toBe('stopped')
    expect(h.ctx()).toMatchObject({ forcedStops: 1, lastStopForced: true, lastError: 'stop timed out after 250 ms; force-stopped' })
    expect(h.notes.at(-1)).toBe('stopped:true')
    // The next start clears the flag.
    h.send({ type: 'START' })
    expect(h.ctx().lastStopForced).toBe(false)
  })

  it('a release that hangs is abandoned too (counted), and the failure still goes to the supervisor', async () => {
    const h = harness({ stopTimeoutMs: 100 })
    await h.run()
    h.send({ type: 'SOURCE_FAILED', generation: 1, error: 'x' })
    await h.clock.advanceAsync(100)
    expect(h.state()).toBe('failed.released')
    expect(h.ctx().forcedStops).toBe(1)
    // A release that fails counts as released, not forced.
    h.send({ type: 'RESTART_AFTER', delayMs: 0 })
    await h.settle()
    h.starts.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'SOURCE_FAILED', generation: 2, error: 'y' })
    h.stops.at(-1)?.reject(new Error('nope'))
    await h.settle()
    expect(h.state()).toBe('failed.released')
    expect(h.ctx().forcedStops).toBe(1)
  })

  it('start failures and timeouts fail with their reason; the timeout aborts the start', async () => {
    const h = harness({ startTimeoutMs: 300 })
    h.send({ type: 'START' })
    h.starts.at(-1)?.reject(new Error('no permission'))
    await h.settle()
    expect(h.state()).toBe('failed.releasing')
    expect(h.ctx()).toMatchObject({ lastError: 'start failed: no permission', exit: 'failure' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART_AFTER', delayMs: 0 })
    await h.settle()
    expect(h.state()).toBe('starting')
    await h.clock.advanceAsync(299)
    expect(h.state()).toBe('starting')
    await h.clock.advanceAsync(1)
    expect(h.state()).toBe('failed.releasing')
    expect(h.ctx()).toMatchObject({ lastError: 'start timed out after 300 ms', exit: 'failure' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'GIVE_UP', reason: 'too many' })
    expect(h.state()).toBe('gaveUp')
    expect(h.notes.at(-1)).toBe('gaveUp:too many')
    expect(h.actor.getSnapshot().status).toBe('done')
  })

  it('says what a start rejected with, whatever it is', async () => {
    for (const [reason, text] of [
      ['plain words', 'start failed: plain words'],
      [{ code: 7 }, 'start failed: {"code":7}'],
      [undefined, 'start failed: undefined'],
    ] as const) {
      const h = harness()
      h.send({ type: 'START' })
      h.starts.at(-1)?.reject(reason)
      await h.settle()
      expect(h.ctx().lastError).toBe(text)
    }
    const h = harness()
    await h.run()
    h.send({ type: 'STOP' })
    h.stops.at(-1)?.reject('no bus')
    await h.settle()
    expect(h.ctx().lastError).toBe('stop failed: no bus')
  })

  it('a manual restart taken over by a group restart counts as automatic', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'RESTART' })
    h.send({ type: 'SUSPEND' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESUME' })
    expect(h.ctx()).toMatchObject({ restarts: 1, manualRestarts: 0, manualPending: false })
  })

  it('ignores reports from an older instance', async () => {
    const h = harness()
    await h.run()
    h.send({ type: 'RESTART' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.starts.at(-1)?.resolve()
    await h.settle()
    expect(h.ctx().generation).toBe(2)
    for (const e of [
      { type: 'SOURCE_FAILED', generation: 1, error: 'late' },
      { type: 'SOURCE_ENDED', generation: 1 },
      { type: 'FAULT', generation: 1, error: 'late' },
    ] as const)
      h.send(e)
    expect(h.state()).toBe('running')
    expect(h.ctx().lastError).toBeNull()
  })

  it('SUSPEND releases from any live state and RESUME starts again, counted as automatic', async () => {
    const h = harness({ restarts: 4, manualRestarts: 1 })
    expect(h.ctx()).toMatchObject({ restarts: 4, manualRestarts: 1 })
    h.send({ type: 'START' })
    h.send({ type: 'SUSPEND' })
    expect(h.state()).toBe('suspended.releasing')
    h.stops.at(-1)?.resolve()
    await h.settle()
    expect(h.state()).toBe('suspended.held')
    h.send({ type: 'RESUME' })
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 5, manualRestarts: 1 })
    h.starts.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'SUSPEND' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'RESTART' })
    expect(h.state()).toBe('starting')
    expect(h.ctx()).toMatchObject({ restarts: 6, manualRestarts: 2 })
    h.starts.at(-1)?.resolve()
    await h.settle()
    // From failed.released (already released) and restarting.waiting straight to held.
    h.send({ type: 'SOURCE_FAILED', generation: 3, error: 'x' })
    h.stops.at(-1)?.resolve()
    await h.settle()
    h.send({ type: 'SUSPEND' })
    expect(h.state()).toBe('suspended.held')
    h.send({ type: 'STOP' })
    expect(h.state()).toBe('stopped')
  })
})

describe('STOP and SUSPEND while releasing or waiting', () => {
  /** Reach `failed.releasing` (crash), `restarting.releasing` (manual restart) or `restarting.waiting` (backoff). */
  async function at(where: 'failed.releasing' | 'restarting.releasing' | 'restarting.waiting') {
    const h = harness()
    await h.run()
    if (where === 'restarting.releasing') h.send({ type: 'RESTART' })
    else h.send({ type: 'SOURCE_FAILED', generation: 1, error: 'boom' })
    if (where === 'restarting.waiting') {
      h.stops.at(-1)?.resolve()
      await h.settle()
      h.send({ type: 'RESTART_AFTER', delayMs: 1000 })
    }
    expect(h.state()).toBe(where)
    return h
  }

  it('goes where the machine declares, for each of them', async () => {
    const cases: [Parameters<typeof at>[0], 'STOP' | 'SUSPEND', string][] = [
      ['failed.releasing', 'STOP', 'stopping'],
      ['failed.releasing', 'SUSPEND', 'suspended.releasing'],
      ['restarting.releasing', 'STOP', 'stopping'],
      ['restarting.releasing', 'SUSPEND', 'suspended.releasing'],
      ['restarting.waiting', 'STOP', 'stopped'],
      ['restarting.waiting', 'SUSPEND', 'suspended.held'],
    ]
    for (const [where, type, to] of cases) {
      const h = await at(where)
      h.send({ type })
      expect(h.state(), `${where} --${type}-->`).toBe(to)
    }
  })
})
