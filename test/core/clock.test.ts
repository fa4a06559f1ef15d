import { describe, expect, it } from 'vitest'
import { flushMicrotasks, ManualClock, systemClock } from '../../src/core/clock.js'

describe('ManualClock', () => {
  it('fires timers one by one at their own due time, in due order, ties in creation order', () => {
    const clock = new ManualClock(100)
    const fired: string[] = []
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20)
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10)
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 20)
    expect(clock.pending).toBe(3)
    expect(clock.nextDue()).toBe(110)
    clock.advance(15)
    expect(fired).toEqual(['a@110'])
    expect(clock.now()).toBe(115)
    clock.advance(5)
    expect(fired).toEqual(['a@110', 'b@120', 'c@120'])
    expect(clock.pending).toBe(0)
    expect(clock.nextDue()).toBeUndefined()
  })

  it('fires a timer set by a timer within the same advance when it falls due', () => {
    const clock = new ManualClock()
    const fired: number[] = []
    clock.setTimeout(() => {
      fired.push(clock.now())
      clock.setTimeout(() => fired.push(clock.now()), 5)
    }, 5)
    clock.advance(10)
    expect(fired).toEqual([5, 10])
    clock.advance(100)
    expect(fired).toEqual([5, 10])
  })

  it('clears timers; bad delays and negative advances are treated as 0', () => {
    const clock = new ManualClock(7)
    const fired: string[] = []
    const h = clock.setTimeout(() => fired.push('cleared'), 1)
    clock.clearTimeout(h)
    clock.clearTimeout('not a handle')
    clock.setTimeout(() => fired.push('nan'), Number.NaN)
    clock.setTimeout(() => fired.push('neg'), -5)
    clock.setTimeout(() => fired.push('inf'), Number.POSITIVE_INFINITY)
    clock.advance(-3)
    expect(clock.now()).toBe(7)
    expect(fired).toEqual(['nan', 'neg', 'inf'])
  })

  it('advanceAsync lets promise callbacks woken by one timer schedule the next before time moves on', async () => {
    const clock = new ManualClock()
    const seen: number[] = []
    const sleep = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms))
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(10)
        seen.push(clock.now())
      }
    })()
    await clock.advanceAsync(25)
    expect(seen).toEqual([10, 20])
    expect(clock.now()).toBe(25)
    await clock.advanceAsync(5)
    await loop
    expect(seen).toEqual([10, 20, 30])
  })

  it('with plain advance, async continuations run only after time has moved on', async () => {
    const clock = new ManualClock()
    const seen: number[] = []
    const p = new Promise<void>((r) => clock.setTimeout(r, 10)).then(() => seen.push(clock.now()))
    clock.advance(50)
    await p
    expect(seen).toEqual([50])
  })
})

describe('systemClock and flushMicrotasks', () => {
  it('systemClock reads Date.now and runs real timers that can be cleared', async () => {
    const before = Date.now()
    expect(systemClock.now()).toBeGreaterThanOrEqual(before)
    let fired = 0
    const h = systemClock.setTimeout(() => (fired += 1), 1)
    systemClock.clearTimeout(h)
    await new Promise<void>((r) => systemClock.setTimeout(r, 5))
    expect(fired).toBe(0)
  })

  it('flushMicrotasks runs chains of promise callbacks', async () => {
    let depth = 0
    const chain = async (n: number): Promise<void> => {
      if (n === 0) return
      depth += 1
      await Promise.resolve()
      await chain(n - 1)
    }
    void chain(10)
    await flushMicrotasks()
    expect(depth).toBe(10)
  })
})
