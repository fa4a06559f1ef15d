/**
 * The leader-election machine in virtual time: a ManualClock drives its timers and a scripted
 * `attempt` actor answers, so every timing rule is checked exactly (no sleeping, no thresholds).
 */
import { describe, expect, it } from 'vitest'
import { createActor, fromPromise } from 'xstate'
import { type AttemptInput, type AttemptResult, electionState, leaderElectionMachine } from '../../machines/leader-election.js'
import { flushMicrotasks, ManualClock } from '../../src/core/clock.js'

type Answer = ((clock: ManualClock, input: AttemptInput) => AttemptResult) | 'hang' | Error

/** An election actor whose attempts answer from `script` in turn (the last answer repeats). */
function election(script: Answer[], opts = { renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }) {
  const clock = new ManualClock(0)
  const calls: { at: number; leader: boolean }[] = []
  let i = 0
  const machine = leaderElectionMachine.provide({
    actors: {
      attempt: fromPromise<AttemptResult, AttemptInput>(({ input }) => {
        calls.push({ at: clock.now(), leader: input.leader })
        const answer = script[Math.min(i++, script.length - 1)] as Answer
        if (answer === 'hang') return new Promise<AttemptResult>(() => {})
        if (answer instanceof Error) return Promise.reject(answer)
        return Promise.resolve(answer(clock, input))
      }),
    },
  })
  const actor = createActor(machine, { input: { identity: 'me', ...opts }, clock })
  const states: { at: number; state: string }[] = []
  actor.subscribe((s) => {
    const st = electionState(s.value)
    if (states[states.length - 1]?.state !== st) states.push({ at: clock.now(), state: st })
  })
  actor.start()
  return { clock, calls, actor, states }
}

const us: Answer = (clock) => ({ kind: 'held-by-us', at: clock.now() })
const other =
  (expiresInMs: number): Answer =>
  (clock) => ({ kind: 'held-by-other', holder: 'them', at: clock.now(), expiresInMs })

describe('leader election machine (virtual time)', () => {
  it('takes a free lease at once, then renews every retry period', async () => {
    const e = election([us])
    await flushMicrotasks()
    expect(e.actor.getSnapshot().value).toEqual({ leader: { holding: 'waiting' } })
    await e.clock.advanceAsync(7_000)
    expect(e.calls.map((c) => c.at)).toEqual([0, 2_000, 4_000, 6_000])
    expect(e.calls.slice(1).every((c) => c.leader)).toBe(true)
    expect(e.actor.getSnapshot().context).toMatchObject({ holder: 'me', lastRenewAt: 6_000, leaderships: 1, transitions: 1 })
    e.actor.stop()
  })

  it('steps down exactly renewDeadline after the last successful renewal when renewals hang', async () => {
    // Acquire at 0, renew at 2 s, then the network stalls: the renewal at 4 s never answers.
    const e = election([us, us, 'hang'])
    await flushMicrotasks()
    await e.clock.advanceAsync(20_000)
    const down = e.states.find((s) => s.state === 'candidate' && s.at > 0)
    expect(down?.at).toBe(2_000 + 10_000)
    expect(e.actor.getSnapshot().context.lostReason).toMatch(/renew deadline \(10000 ms\)/)
    e.actor.stop()
  })

  it('keeps leading through failed renewals that recover before the deadline', async () => {
    const boom = new Error('HTTP 500')
    const e = election([us, boom, boom, us])
    await flushMicrotasks()
    await e.clock.advanceAsync(9_000)
    expect(e.states.map((s) => s.state)).toEqual(['candidate', 'leader'])
    expect(e.calls.map((c) => c.at)).toEqual([0, 2_000, 4_000, 6_000, 8_000])
    expect(e.actor.getSnapshot().context).toMatchObject({ failures: 2, lastRenewAt: 8_000, lastError: null })
    e.actor.stop()
  })

  it('follows a valid holder and tries again when its lease would expire, if that is sooner than the retry period', async () => {
    const e = election([other(5_000), other(700), us])
    await flushMicrotasks()
    expect(electionState(e.actor.getSnapshot().value)).toBe('follower')
    await e.clock.advanceAsync(5_000)
    // 0: held (expires in 5 s) -> wait 2 s; 2 s: held (expires in 0.7 s) -> wait 0.7 s; 2.7 s: take it.
    expect(e.calls.map((c) => c.at)).toEqual([0, 2_000, 2_700, 4_700])
    expect(e.states).toEqual([
      { at: 0, state: 'candidate' },
      { at: 0, state: 'follower' },
      { at: 2_700, state: 'leader' },
    ])
    e.actor.stop()
  })

  it('a leader that finds another holder (its lease was taken) becomes a follower at once', async () => {
    const e = election([us, other(4_000)])
    await flushMicrotasks()
    await e.clock.advanceAsync(2_000)
    expect(e.states.map((s) => s.state)).toEqual(['candidate', 'leader', 'follower'])
    expect(e.actor.getSnapshot().context).toMatchObject({ holder: 'them', lostReason: 'the lease is held by them', transitions: 2, attempts: 2 })
    e.actor.stop()
  })

  it('a conflict (someone wrote first) retries after the retry period; a hanging attempt times out at the renew deadline', async () => {
    const e = election([(c) => ({ kind: 'conflict', at: c.now() }), 'hang', us], { renewDeadlineMs: 3_000, retryPeriodMs: 1_000 })
    await flushMicrotasks()
    await e.clock.advanceAsync(6_000)
    // 0 conflict -> 1 s: hangs -> times out at 4 s -> 5 s: acquired.
    expect(e.calls.slice(0, 3).map((c) => c.at)).toEqual([0, 1_000, 5_000])
    expect(e.states.map((s) => s.state)).toEqual(['candidate', 'leader'])
    expect(e.actor.getSnapshot().context.failures).toBe(1)
    e.actor.stop()
  })

  it('counts attempts and failures, records what each attempt saw, and says why it failed', async () => {
    const conflict: Answer = (c) => ({ kind: 'conflict', at: c.now() })
    const e = election([conflict, new Error('HTTP 503'), new Error('HTTP 504')], {
      renewDeadlineMs: 3_000,
      retryPeriodMs: 1_000,
    })
    const ctx = () => e.actor.getSnapshot().context
    await flushMicrotasks()
    expect(ctx()).toMatchObject({ attempts: 1, failures: 0, lastAttemptAt: 0, transitions: 0, holder: null, lastError: null })
    expect(e.actor.getSnapshot().value).toEqual({ candidate: 'waiting' })
    await e.clock.advanceAsync(1_000)
    expect(ctx()).toMatchObject({ attempts: 2, failures: 1, lastError: 'HTTP 503', lastAttemptAt: 0 })
    await e.clock.advanceAsync(1_000)
    expect(ctx()).toMatchObject({ attempts: 3, failures: 2, lastError: 'HTTP 504', transitions: 0 })
    expect(e.calls.map((c) => c.leader)).toEqual([false, false, false])
    e.actor.stop()
  })

  it('a rejection that is no Error is shown as text', async () => {
    for (const [reason, text] of [
      ['plain text', 'plain text'],
      [42, '42'],
    ] as const) {
      const clock = new ManualClock(0)
      const machine = leaderElectionMachine.provide({
        actors: { attempt: fromPromise<AttemptResult, AttemptInput>(() => Promise.reject(reason)) },
      })
      const actor = createActor(machine, { input: { identity: 'me', renewDeadlineMs: 3_000, retryPeriodMs: 1_000 }, clock }).start()
      await flushMicrotasks()
      expect(actor.getSnapshot().context).toMatchObject({ failures: 1, lastError: text, attempts: 1 })
      actor.stop()
    }
  })

  it('a holder whose lease has already expired is tried again at once; the follower attempts as a non-leader', async () => {
    const e = election([other(-500), us], { renewDeadlineMs: 3_000, retryPeriodMs: 1_000 })
    await flushMicrotasks()
    await e.clock.advanceAsync(0)
    expect(e.calls).toEqual([
      { at: 0, leader: false },
      { at: 0, leader: false },
    ])
    expect(e.actor.getSnapshot().context).toMatchObject({ holder: 'me', transitions: 2, leaderships: 1, attempts: 2, lastAttemptAt: 0, lastRenewAt: 0 })
    e.actor.stop()
  })

  it('a follower whose attempt fails or hangs tries again after its follower delay, keeping what it knew', async () => {
    const e = election([other(800), new Error('HTTP 500'), 'hang', us], { renewDeadlineMs: 3_000, retryPeriodMs: 1_000 })
    await flushMicrotasks()
    expect(e.actor.getSnapshot().context).toMatchObject({ holder: 'them', followerRetryMs: 800, lastAttemptAt: 0 })
    await e.clock.advanceAsync(800)
    // Failed at 800: still following, next try 800 ms later.
    expect(e.actor.getSnapshot().value).toEqual({ follower: 'waiting' })
    expect(e.actor.getSnapshot().context).toMatchObject({ failures: 1, lastError: 'HTTP 500', holder: 'them' })
    await e.clock.advanceAsync(800)
    // Hangs from 1600 until the renew deadline (4600), then waits 800 again: acquired at 5400.
    await e.clock.advanceAsync(3_000)
    expect(e.actor.getSnapshot().context).toMatchObject({ failures: 2, lastError: 'no answer from the API server within 3000 ms' })
    expect(e.actor.getSnapshot().value).toEqual({ follower: 'waiting' })
    await e.clock.advanceAsync(800)
    expect(e.calls.map((c) => c.at)).toEqual([0, 800, 1_600, 5_400])
    expect(e.states.map((s) => s.state)).toEqual(['candidate', 'follower', 'leader'])
    expect(e.actor.getSnapshot().context).toMatchObject({ transitions: 2, lastError: null, lastRenewAt: 5_400 })
    e.actor.stop()
  })

  it('a leader whose renewal conflicts or fails waits a retry period and renews again, within the deadline', async () => {
    const e = election([us, (c) => ({ kind: 'conflict', at: c.now() }), new Error('x'), us], { renewDeadlineMs: 5_000, retryPeriodMs: 1_000 })
    await flushMicrotasks()
    await e.clock.advanceAsync(1_000)
    expect(e.actor.getSnapshot().value).toEqual({ leader: { holding: 'waiting' } })
    expect(e.actor.getSnapshot().context).toMatchObject({ lastAttemptAt: 1_000, lastRenewAt: 0, attempts: 2 })
    await e.clock.advanceAsync(2_000)
    expect(e.calls.map((c) => [c.at, c.leader])).toEqual([
      [0, false],
      [1_000, true],
      [2_000, true],
      [3_000, true],
    ])
    expect(e.actor.getSnapshot().context).toMatchObject({ lastRenewAt: 3_000, failures: 1, attempts: 4, leaderships: 1, transitions: 1 })
    e.actor.stop()
  })

  it('stepping down counts as a transition back to candidate, forgets the holder, and tries again', async () => {
    const e = election([us, 'hang', us], { renewDeadlineMs: 3_000, retryPeriodMs: 1_000 })
    await flushMicrotasks()
    await e.clock.advanceAsync(3_000)
    // Renewal at 1 s hangs; the deadline counts from the acquisition at 0: candidate at 3 s, attempts at once.
    expect(e.states).toEqual([
      { at: 0, state: 'candidate' },
      { at: 0, state: 'leader' },
      { at: 3_000, state: 'candidate' },
      { at: 3_000, state: 'leader' },
    ])
    expect(e.actor.getSnapshot().context).toMatchObject({ transitions: 3, leaderships: 2, holder: 'me' })
    e.actor.stop()
  })

  it('the bare machine (no Lease I/O provided) never holds the lease', async () => {
    const clock = new ManualClock(0)
    const actor = createActor(leaderElectionMachine, { input: { identity: 'me', renewDeadlineMs: 3_000, retryPeriodMs: 1_000 }, clock }).start()
    await flushMicrotasks()
    await clock.advanceAsync(2_500)
    expect(actor.getSnapshot().value).toEqual({ candidate: 'waiting' })
    expect(actor.getSnapshot().context).toMatchObject({ attempts: 3, lastAttemptAt: 0, holder: null, transitions: 0, failures: 0 })
    actor.stop()
  })

  it('STOP ends the election from any state', async () => {
    const e = election([us])
    await flushMicrotasks()
    e.actor.send({ type: 'STOP' })
    expect(e.actor.getSnapshot().status).toBe('done')
    expect(electionState(e.actor.getSnapshot().value)).toBe('stopped')
    expect(e.clock.pending).toBe(0)
  })
})

describe('electionState', () => {
  it('reads the top-level state of a snapshot value; anything else is a candidate', () => {
    expect(electionState('stopped')).toBe('stopped')
    expect(electionState({ leader: { holding: 'waiting' } })).toBe('leader')
    expect(electionState({ follower: 'waiting' })).toBe('follower')
    expect(electionState({ candidate: 'attempting' })).toBe('candidate')
    expect(electionState('elsewhere')).toBe('candidate')
    expect(electionState({})).toBe('candidate')
    expect(electionState(undefined)).toBe('candidate')
    expect(electionState(null)).toBe('candidate')
  })
})
