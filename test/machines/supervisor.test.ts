import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createActor, fromPromise } from 'xstate'
import type { CollectorNotification, InstanceRef } from '../../machines/collector-lifecycle.js'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { type ChildSpec, SUPERVISOR_STATES, type SupervisorEvent, supervisorMachine, type SupervisorState } from '../../machines/supervisor.js'
import { machineGraph } from '../../src/inspector/machine-graph.js'

/**
 * The supervisor machine on its own: its phase table, the registration order it keeps, and what it
 * routes to its children and to the runtime (`onChildNotification`). The children are real
 * lifecycle actors whose start and stop resolve at once.
 */
function harness() {
  const notified: CollectorNotification[] = []
  const machine = supervisorMachine.provide({
    actors: {
      collector: collectorLifecycleMachine.provide({
        actors: {
          startCollector: fromPromise<void, InstanceRef>(async () => {}),
          stopCollector: fromPromise<void, InstanceRef>(async () => {}),
        },
      }),
    },
    actions: { onChildNotification: (_, params: CollectorNotification) => void notified.push(params) },
  })
  const actor = createActor(machine)
  actor.start()
  const phase = () => actor.getSnapshot().value as SupervisorState
  const order = () => actor.getSnapshot().context.order
  const child = (name: string) =>
    actor.getSnapshot().children[name] as ReturnType<typeof createActor<typeof collectorLifecycleMachine>> | undefined
  const spec = (name: string, extra: Partial<ChildSpec> = {}): ChildSpec => ({ name, startTimeoutMs: 1000, stopTimeoutMs: 2000, ...extra })
  return { actor, notified, phase, order, child, spec, send: (e: SupervisorEvent) => actor.send(e) }
}

const PHASE_EVENTS: SupervisorEvent[] = [
  { type: 'START' },
  { type: 'STARTED' },
  { type: 'STOP' },
  { type: 'STOPPED' },
  { type: 'ESCALATE', reason: 'too many restarts' },
]

/** The phase table: where each phase event leads from each phase (absent: ignored). */
const NEXT: Record<SupervisorState, Partial<Record<string, SupervisorState>>> = {
  idle: { START: 'starting', STOP: 'stopping' },
  starting: { STARTED: 'running', STOP: 'stopping', ESCALATE: 'escalated' },
  running: { STOP: 'stopping', ESCALATE: 'escalated' },
  escalated: { STOP: 'stopping' },
  stopping: { STOPPED: 'stopped' },
  stopped: {},
}

/** Reference model of the phase and the escalation reason. */
function model(events: SupervisorEvent[]): { phase: SupervisorState; escalation: string | null } {
  let phase: SupervisorState = 'idle'
  let escalation: string | null = null
  for (const e of events) {
    const next: SupervisorState | undefined = NEXT[phase][e.type]
    if (next === undefined) continue
    if (e.type === 'ESCALATE') escalation = e.reason
    phase = next
  }
  return { phase, escalation }
}

describe('supervisor machine', () => {
  it('moves between phases exactly as its table says, for any sequence of phase events', () => {
    const event = fc.oneof(
      fc.constantFrom(...PHASE_EVENTS.filter((e) => e.type !== 'ESCALATE')),
      fc.string({ minLength: 1, maxLength: 8 }).map((reason): SupervisorEvent => ({ type: 'ESCALATE', reason })),
    )
    fc.assert(
      fc.property(fc.array(event, { maxLength: 12 }), (events) => {
        const h = harness()
        // A stopped supervisor is final: nothing is sent to it after that (XState would warn).
        for (const e of events) if (h.actor.getSnapshot().status === 'active') h.send(e)
        const expected = model(events)
        expect(h.phase()).toBe(expected.phase)
        expect(h.actor.getSnapshot().context.escalation).toBe(expected.escalation)
        expect(h.actor.getSnapshot().status).toBe(expected.phase === 'stopped' ? 'done' : 'active')
      }),
      { numRuns: 300 },
    )
  })

  it('every phase answers every phase event (the whole table, each cell)', () => {
    const paths: Record<SupervisorState, SupervisorEvent[]> = {
      idle: [],
      starting: [{ type: 'START' }],
      running: [{ type: 'START' }, { type: 'STARTED' }],
      escalated: [{ type: 'START' }, { type: 'ESCALATE', reason: 'r' }],
      stopping: [{ type: 'STOP' }],
      stopped: [{ type: 'STOP' }, { type: 'STOPPED' }],
    }
    for (const [from, path] of Object.entries(paths) as [SupervisorState, SupervisorEvent[]][]) {
      for (const e of PHASE_EVENTS) {
        const h = harness()
        for (const p of path) h.send(p)
        expect(h.phase(), `path to ${from}`).toBe(from)
        if (from === 'stopped') {
          expect(h.actor.getSnapshot().status).toBe('done')
          continue
        }
        h.send(e)
        expect(h.phase(), `${from} --${e.type}-->`).toBe(NEXT[from][e.type] ?? from)
      }
    }
  })

  it('the graph the inspector draws is the phase table: one machine `supervisor`, idle first, stopped final', () => {
    const g = machineGraph(supervisorMachine)
    expect(g.id).toBe('supervisor')
    const sorted = (xs: (string | null)[][]) => [...xs].sort((a, b) => String(a[0]).localeCompare(String(b[0])))
    expect(sorted(g.nodes.map((n) => [n.id, n.initial, n.type]))).toEqual(sorted([
      ['supervisor', 'supervisor.idle', 'compound'],
      ...SUPERVISOR_STATES.map((s) => [`supervisor.${s}`, null, s === 'stopped' ? 'final' : 'atomic']),
    ]))
    const expected = SUPERVISOR_STATES.flatMap((s) => Object.entries(NEXT[s]).map(([e, to]) => `supervisor.${s} -${e}-> supervisor.${to}`))
    expect(g.edges.map((e) => `${e.source} -${e.event}-> ${e.target}`).sort()).toEqual(expected.sort())
  })

  it('keeps the registration order: ADD appends, `at` inserts (clamped), duplicates are ignored', () => {
    const h = harness()
    h.send({ type: 'ADD', child: h.spec('a') })
    h.send({ type: 'ADD', child: h.spec('b') })
    h.send({ type: 'ADD', child: h.spec('c'), at: 1 })
    expect(h.order()).toEqual(['a', 'c', 'b'])
    h.send({ type: 'ADD', child: h.spec('d'), at: 0 })
    expect(h.order()).toEqual(['d', 'a', 'c', 'b'])
    h.send({ type: 'ADD', child: h.spec('e'), at: -3 })
    expect(h.order()).toEqual(['e', 'd', 'a', 'c', 'b'])
    h.send({ type: 'ADD', child: h.spec('f'), at: 5 })
    h.send({ type: 'ADD', child: h.spec('g'), at: 99 })
    expect(h.order()).toEqual(['e', 'd', 'a', 'c', 'b', 'f', 'g'])
    // A second ADD of a known name changes nothing: no second actor, same place.
    const before = h.child('a')
    h.send({ type: 'ADD', child: h.spec('a', { startTimeoutMs: 7 }), at: 0 })
    expect(h.order()).toEqual(['e', 'd', 'a', 'c', 'b', 'f', 'g'])
    expect(h.child('a')).toBe(before)
    expect(h.child('a')?.getSnapshot().context.startTimeoutMs).toBe(1000)
    expect(Object.keys(h.actor.getSnapshot().children).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'])
  })

  it('insertion at any position matches a list model (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: -3, max: 10 }), { nil: undefined }), { maxLength: 8 }), (ats) => {
        const h = harness()
        const expected: string[] = []
        ats.forEach((at, i) => {
          const name = `c${i}`
          h.send({ type: 'ADD', child: h.spec(name), ...(at !== undefined ? { at } : {}) })
          if (at === undefined || at >= expected.length) expected.push(name)
          else expected.splice(Math.max(0, at), 0, name)
        })
        expect(h.order()).toEqual(expected)
      }),
      { numRuns: 200 },
    )
  })

  it('spawns each child with its spec as input, carried counts included', () => {
    const h = harness()
    h.send({ type: 'ADD', child: h.spec('a', { startTimeoutMs: 123, stopTimeoutMs: 456, restarts: 4, manualRestarts: 2 }) })
    const ctx = h.child('a')?.getSnapshot().context
    expect(ctx).toMatchObject({ name: 'a', startTimeoutMs: 123, stopTimeoutMs: 456, restarts: 4, manualRestarts: 2 })
    expect(h.child('a')?.id).toBe('a')
  })

  it('REMOVE stops and forgets only the named child; an unknown name changes nothing', () => {
    const h = harness()
    for (const n of ['a', 'b', 'c']) h.send({ type: 'ADD', child: h.spec(n) })
    const b = h.child('b')
    h.send({ type: 'REMOVE', name: 'zz' })
    expect(h.order()).toEqual(['a', 'b', 'c'])
    h.send({ type: 'REMOVE', name: 'b' })
    expect(h.order()).toEqual(['a', 'c'])
    expect(h.child('b')).toBeUndefined()
    expect(b?.getSnapshot().status).toBe('stopped')
    expect(h.child('a')?.getSnapshot().status).toBe('active')
    // The name is free again: a new actor takes it.
    h.send({ type: 'ADD', child: h.spec('b') })
    expect(h.order()).toEqual(['a', 'c', 'b'])
    expect(h.child('b')).not.toBe(b)
  })

  it('COMMAND goes to the named child only; to an unknown name it goes nowhere', async () => {
    const h = harness()
    for (const n of ['a', 'b']) h.send({ type: 'ADD', child: h.spec(n) })
    h.send({ type: 'COMMAND', name: 'zz', command: { type: 'START' } })
    h.send({ type: 'COMMAND', name: 'b', command: { type: 'START' } })
    await new Promise((r) => setTimeout(r, 0))
    expect(h.child('a')?.getSnapshot().value).toBe('idle')
    expect(h.child('b')?.getSnapshot().value).toBe('running')
    expect(h.phase()).toBe('idle')
    // b's notification reached the runtime, with the child's own data.
    expect(h.notified).toEqual([{ type: 'COLLECTOR.RUNNING', name: 'b', generation: 1 }])
  })

  it('hands every collector notification to the runtime unchanged, in any phase', () => {
    const notes: CollectorNotification[] = [
      { type: 'COLLECTOR.RUNNING', name: 'x', generation: 3 },
      { type: 'COLLECTOR.EXITED', name: 'x', generation: 3, exit: 'normal', error: 'e' },
      { type: 'COLLECTOR.STOPPED', name: 'x', forced: true },
      { type: 'COLLECTOR.GAVE_UP', name: 'x', reason: 'why' },
    ]
    for (const path of [[], [{ type: 'START' }], [{ type: 'START' }, { type: 'STARTED' }], [{ type: 'STOP' }]] as SupervisorEvent[][]) {
      const h = harness()
      for (const p of path) h.send(p)
      const phase = h.phase()
      for (const n of notes) h.send(n)
      expect(h.notified).toEqual(notes)
      expect(h.phase()).toBe(phase)
    }
  })
})
