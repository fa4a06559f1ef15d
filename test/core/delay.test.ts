import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { delay } from '../../src/core/delay.js'

describe('delay', () => {
  it('resolves true after exactly ms on the given clock, leaving no timer', async () => {
    const clock = new ManualClock()
    let result: boolean | undefined
    void delay(100, undefined, clock).then((r) => (result = r))
    await clock.advanceAsync(99)
    expect(result).toBeUndefined()
    await clock.advanceAsync(1)
    expect(result).toBe(true)
    expect(clock.pending).toBe(0)
  })

  it('resolves false at once when the signal aborts during the wait, clearing its timer and listener', async () => {
    const clock = new ManualClock()
    const ac = new AbortController()
    let listeners = 0
    const add = ac.signal.addEventListener.bind(ac.signal)
    ac.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners += 1
      return add(...args)
    }) as typeof add
    const p = delay(100, ac.signal, clock)
    expect(clock.pending).toBe(1)
    expect(listeners).toBe(1)
    ac.abort()
    expect(await p).toBe(false)
    expect(clock.pending).toBe(0)
  })

  it('resolves false without a timer when the signal is already aborted', async () => {
    const clock = new ManualClock()
    expect(await delay(100, AbortSignal.abort(), clock)).toBe(false)
    expect(clock.pending).toBe(0)
  })

  it('removes its abort listener when the time is up (aborting later changes nothing)', async () => {
    const clock = new ManualClock()
    const ac = new AbortController()
    const added: unknown[] = []
    const removed: [string, unknown][] = []
    const add = ac.signal.addEventListener.bind(ac.signal)
    const remove = ac.signal.removeEventListener.bind(ac.signal)
    ac.signal.addEventListener = ((type: string, fn: unknown, opts?: unknown) => {
      added.push(fn)
      return add(type as 'abort', fn as () => void, opts as never)
    }) as typeof add
    ac.signal.removeEventListener = ((type: string, fn: unknown) => {
      removed.push([type, fn])
      return remove(type as 'abort', fn as () => void)
    }) as typeof remove
    const p = delay(10, ac.signal, clock)
    await clock.advanceAsync(10)
    expect(await p).toBe(true)
    expect(removed).toEqual([['abort', added[0]]])
    ac.abort()
    expect(clock.pending).toBe(0)
  })

  it('negative delays are 0; the system clock is the default', async () => {
    const clock = new ManualClock()
    const p = delay(-50, undefined, clock)
    await clock.advanceAsync(0)
    expect(await p).toBe(true)
    expect(await delay(1)).toBe(true)
  })
})
