import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { MergeBuffer } from '../../src/stream/merge-buffer.js'
import { resolvePolicy } from '../../src/supervisor/policy.js'
import { Supervisor } from '../../src/supervisor/supervisor.js'
import { Driven, type Happening } from '../support/driven.js'

/** The Supervisor without the manager in front of it: its own checks and its phase. */
describe('Supervisor on its own', () => {
  it('names what is not registered or registered twice; unknown names have no view and no state', async () => {
    const clock = new ManualClock(0)
    const buffer = new MergeBuffer({}, clock)
    const sup = new Supervisor({ buffer, strategy: 'one_for_one', healthCheckIntervalMs: 1000, clock })
    const log: Happening[] = []
    const policy = resolvePolicy({ backoff: { initialMs: 100, jitter: 0 } })
    sup.register('a', new Driven('a', clock, log).factory, policy)
    expect(() => sup.register('a', new Driven('a', clock, log).factory, policy)).toThrow('collector "a" is already registered')
    await expect(sup.unregister('zz')).rejects.toThrow('collector "zz" is not registered')
    expect(() => sup.startOne('zz')).toThrow('collector "zz" is not registered')
    expect(() => sup.restartOne('zz')).toThrow('collector "zz" is not registered')
    await expect(sup.stopOne('zz')).resolves.toBeUndefined()
    expect(sup.view('zz')).toBeUndefined()
    expect(sup.childState('zz')).toBeUndefined()
    expect(sup.names()).toEqual(['a'])
    expect(sup.has('a')).toBe(true)
    expect(sup.has('zz')).toBe(false)
    expect(sup.internalError()).toBeUndefined()
    expect(sup.phase()).toBe('idle')
    sup.beginStart()
    expect(sup.phase()).toBe('starting')
    const running = sup.startOne('a')
    await clock.advanceAsync(0)
    expect(await running).toEqual({ kind: 'running' })
    sup.finishStart()
    expect(sup.phase()).toBe('running')
    // Stopping one already stopped returns at once.
    const stopping = sup.stopOne('a')
    await clock.advanceAsync(0)
    await stopping
    expect(sup.childState('a')).toBe('stopped')
    await sup.stopOne('a')
    sup.beginStop()
    expect(sup.phase()).toBe('stopping')
    sup.finishStop()
    expect(sup.phase()).toBe('stopped')
    expect(clock.pending).toBe(0)
  })
})

describe('an error inside the actor system', () => {
  it('goes to onInternalError and stays readable; it is not thrown into the host', async () => {
    const clock = new ManualClock(0)
    const errors: unknown[] = []
    const sup = new Supervisor({ buffer: new MergeBuffer({}, clock), strategy: 'one_for_one', healthCheckIntervalMs: 1000, clock, onInternalError: (e) => errors.push(e) })
    // Nothing public can break the machine; a malformed event sent to it past the types can.
    const actor = (sup as unknown as { actor: { send: (e: unknown) => void } }).actor
    expect(() => actor.send({ type: 'ADD', child: null })).not.toThrow()
    await clock.advanceAsync(0)
    expect(errors.length).toBe(1)
    expect(String(errors[0])).toMatch(/Unable to evaluate guard 'canAdd'/)
    expect(sup.internalError()).toBe(errors[0])
  })
})
