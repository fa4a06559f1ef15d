import { describe, expect, it } from 'vitest'
import { type AnyStateMachine, createActor, type EventObject } from 'xstate'
import { getAdjacencyMap, getShortestPaths, getStateNodes } from 'xstate/graph'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { supervisorMachine } from '../../machines/supervisor.js'
import { type NatsConnectionEvent, natsConnectionMachine } from '../../machines/nats-connection.js'

type AnyNode = ReturnType<typeof getStateNodes>[number]

/** Every (state node, event) pair a machine declares, as `node.id -> event`. */
function declaredTransitions(machine: AnyStateMachine): Set<string> {
  const out = new Set<string>()
  for (const node of getStateNodes(machine.root) as AnyNode[]) {
    for (const [eventType] of node.transitions) out.add(`${node.id} -> ${eventType}`)
  }
  for (const [eventType] of machine.root.transitions) out.add(`${machine.root.id} -> ${eventType}`)
  return out
}

/** Walk the machine's adjacency map and record which declared transitions fired. */
function coveredTransitions(machine: AnyStateMachine, events: EventObject[], input?: unknown): { transitions: Set<string>; states: Set<string> } {
  const adj = getAdjacencyMap(machine, { events, ...(input !== undefined ? { input } : {}), serializeState: serializeLifecycle, limit: 5000 } as never)
  const transitions = new Set<string>()
  const states = new Set<string>()
  for (const { state, transitions: next } of Object.values(adj)) {
    const snap = state as unknown as { _nodes: AnyNode[]; matches: (v: string) => boolean }
    for (const n of snap._nodes) states.add(n.id)
    for (const [, step] of Object.entries(next)) {
      const { state: to, event } = step as { state: unknown; event: EventObject }
      const toSnap = to as unknown as { _nodes: AnyNode[] }
      for (const n of toSnap._nodes) states.add(n.id)
      // The deepest active node that declares the event is the one whose transition was taken.
      const handler = [...snap._nodes].reverse().find((n) => n.transitions.has(event.type))
        ?? (machine.root.transitions.has(event.type) ? machine.root : undefined)
      if (handler) transitions.add(`${handler.id} -> ${event.type}`)
    }
  }
  return { transitions, states }
}

const lifecycleEvents: EventObject[] = [
  { type: 'START' },
  { type: 'STOP' },
  { type: 'RESTART' },
  { type: 'SUSPEND' },
  { type: 'RESUME' },
  { type: 'RESTART_AFTER', delayMs: 100 } as EventObject,
  { type: 'GIVE_UP', reason: 'test' } as EventObject,
  { type: 'SOURCE_ENDED', generation: 1 } as EventObject,
  { type: 'SOURCE_FAILED', generation: 1, error: 'boom' } as EventObject,
  { type: 'FAULT', generation: 1, error: 'fatal' } as EventObject,
  { type: 'xstate.done.actor.start' },
  { type: 'xstate.error.actor.start', error: new Error('nope') } as EventObject,
  { type: 'xstate.done.actor.release' },
  { type: 'xstate.error.actor.release', error: new Error('nope') } as EventObject,
  { type: 'xstate.done.actor.stop' },
  { type: 'xstate.error.actor.stop', error: new Error('nope') } as EventObject,
  { type: 'xstate.after.startTimeout.collector.starting' },
  { type: 'xstate.after.stopTimeout.collector.stopping' },
  { type: 'xstate.after.stopTimeout.collector.failed.releasing' },
  { type: 'xstate.after.stopTimeout.collector.restarting.releasing' },
  { type: 'xstate.after.stopTimeout.collector.suspended.releasing' },
  { type: 'xstate.after.restartDelay.collector.restarting.waiting' },
]

const input = { name: 'c', startTimeoutMs: 1000, stopTimeoutMs: 1000 }

// Counters (generation, restarts) grow forever; states are told apart by value and exit kind.
const serializeLifecycle = (s: unknown) => {
  const snap = s as { value: unknown; context: { exit: unknown; lastStopForced: boolean } }
  return JSON.stringify([snap.value, snap.context.exit, snap.context.lastStopForced])
}

// Walked without a parent: notifications to the parent become no-ops, the structure is unchanged.
const lifecycle = collectorLifecycleMachine.provide({
  actions: { notifyRunning: () => {}, notifyExited: () => {}, notifyStopped: () => {}, notifyGaveUp: () => {} },
})

describe('collector lifecycle machine', () => {
  it('reaches every state node through generated paths', () => {
    const paths = getShortestPaths(lifecycle, { events: lifecycleEvents, input, serializeState: serializeLifecycle } as never)
    const reached = new Set<string>()
    for (const p of paths) for (const n of (p.state as unknown as { _nodes: AnyNode[] })._nodes) reached.add(n.id)
    const all = (getStateNodes(collectorLifecycleMachine.root) as AnyNode[]).map((n) => n.id)
    expect(all.length).toBeGreaterThanOrEqual(10)
    expect([...all].filter((id) => !reached.has(id))).toEqual([])
  })

  it('takes every declared transition', () => {
    const declared = declaredTransitions(collectorLifecycleMachine)
    const { transitions } = coveredTransitions(lifecycle, lifecycleEvents, input)
    expect([...declared].filter((t) => !transitions.has(t))).toEqual([])
  })

  it('ignores reports from an older instance (generation guard)', () => {
    const stale: EventObject[] = lifecycleEvents.map((e) =>
      'generation' in e ? ({ ...e, generation: 99 } as EventObject) : e,
    )
    const paths = getShortestPaths(lifecycle, {
      events: stale.filter((e) => e.type !== 'STOP' && e.type !== 'RESTART' && e.type !== 'SUSPEND' && !e.type.startsWith('xstate.error') && !e.type.startsWith('xstate.after')),
      input,
      serializeState: serializeLifecycle,
    } as never)
    const leftRunningOnStaleReport = paths.some((p) =>
      p.steps.some((s, i) => i > 0 && (p.steps[i - 1]?.state as { value: unknown }).value === 'running' && 'generation' in s.event && (s.state as { value: unknown }).value !== 'running'),
    )
    expect(leftRunningOnStaleReport).toBe(false)
  })
})

const child = { name: 'c1', startTimeoutMs: 1000, stopTimeoutMs: 1000 }
const supervisorEvents: EventObject[] = [
  { type: 'ADD', child } as EventObject,
  { type: 'REMOVE', name: 'c1' } as EventObject,
  { type: 'START' },
  { type: 'STARTED' },
  { type: 'STOP' },
  { type: 'STOPPED' },
  { type: 'ESCALATE', reason: 'too many restarts' } as EventObject,
  { type: 'COMMAND', name: 'c1', command: { type: 'START' } } as EventObject,
  { type: 'COLLECTOR.RUNNING', name: 'c1', generation: 1 } as EventObject,
  { type: 'COLLECTOR.EXITED', name: 'c1', generation: 1, exit: 'failure', error: 'x' } as EventObject,
  { type: 'COLLECTOR.STOPPED', name: 'c1', forced: false } as EventObject,
  { type: 'COLLECTOR.GAVE_UP', name: 'c1', reason: 'x' } as EventObject,
]

describe('supervisor machine', () => {
  const serializeState = (s: unknown) => {
    const snap = s as { value: unknown; context: { order: string[]; escalation: string | null } }
    return JSON.stringify([snap.value, snap.context.order, snap.context.escalation])
  }

  it('reaches every state through generated paths', () => {
    const paths = getShortestPaths(supervisorMachine, { events: supervisorEvents, serializeState } as never)
    const reached = new Set(paths.map((p) => JSON.stringify((p.state as { value: unknown }).value)))
    for (const s of ['idle', 'starting', 'running', 'stopping', 'stopped', 'escalated']) {
      expect(reached.has(JSON.stringify(s)), `state ${s}`).toBe(true)
    }
  })

  it('takes every declared transition', () => {
    const declared = declaredTransitions(supervisorMachine)
    const adj = getAdjacencyMap(supervisorMachine, { events: supervisorEvents, serializeState, limit: 5000 } as never)
    const taken = new Set<string>()
    for (const { state, transitions } of Object.values(adj)) {
      const nodes = (state as unknown as { _nodes: AnyNode[] })._nodes
      for (const step of Object.values(transitions)) {
        const { event, state: to } = step as { state: unknown; event: EventObject }
        if (serializeState(to) === serializeState(state)) continue // guarded out or no effect
        const handler = [...nodes].reverse().find((n) => n.transitions.has(event.type))
        if (handler) taken.add(`${handler.id} -> ${event.type}`)
      }
    }
    // Notifications and commands only run actions (no change of the supervisor's own snapshot):
    // they are taken whenever a child exists, which the walk must reach.
    const reachedWithChild = Object.values(adj).some(({ state }) =>
      (state as unknown as { context: { order: string[] } }).context.order.includes('c1'),
    )
    expect(reachedWithChild).toBe(true)
    for (const t of declared) if (t.includes('COLLECTOR.') || t.endsWith('-> COMMAND')) taken.add(t)
    expect([...declared].filter((t) => !taken.has(t))).toEqual([])
  })
})

// ---- NATS output connection (machines/nats-connection.ts) ------------------------------------

const natsEvents: NatsConnectionEvent[] = [
  { type: 'START' },
  { type: 'CONNECTED', server: 'nats://a' },
  { type: 'DISCONNECTED', error: 'disconnected' },
  { type: 'RECONNECTED', server: 'nats://b' },
  { type: 'CONNECTION_LOST' },
  { type: 'STREAM_CHECK' },
  { type: 'STREAM_READY' },
  { type: 'STREAM_FAILED', error: 'stream' },
  { type: 'STREAM_LOST' },
  { type: 'PUBLISH_FAILED', error: 'publish' },
  { type: 'ACKED' },
  { type: 'PROBE_START' },
  { type: 'PROBE_DONE', error: 'tls' },
  { type: 'PROBE_DONE', error: null },
  { type: 'ERROR', error: 'other' },
  { type: 'RELEASE' },
  { type: 'CLOSE' },
  { type: 'CLOSED' },
]

const natsKey = (s: { value: unknown; context: unknown }) => JSON.stringify([s.value, s.context])

describe('NATS connection machine', () => {
  it('reaches every state node through generated paths', () => {
    const paths = getShortestPaths(natsConnectionMachine, { events: natsEvents, serializeState: natsKey } as never)
    const reached = new Set<string>()
    for (const p of paths) for (const n of (p.state as unknown as { _nodes: AnyNode[] })._nodes) reached.add(n.id)
    const all = (getStateNodes(natsConnectionMachine.root) as AnyNode[]).map((n) => n.id)
    expect(all.length).toBeGreaterThanOrEqual(20)
    expect(all.filter((id) => !reached.has(id))).toEqual([])
  })

  it('takes every declared transition, every guarded alternative included', () => {
    // Each transition definition, by source node, event and position among that event's candidates.
    const declared = new Set<string>()
    for (const node of [natsConnectionMachine.root, ...(getStateNodes(natsConnectionMachine.root) as AnyNode[])]) {
      for (const [type, candidates] of node.transitions) candidates.forEach((_, i) => declared.add(`${node.id} -> ${type} #${i}`))
    }
    // Breadth-first over every reachable snapshot; the inspector names the transitions each step took.
    const taken = new Set<string>()
    let current: { type: string; _transitions?: { source: AnyNode; eventType: string }[] }[] = []
    const start = createActor(natsConnectionMachine).start()
    const seen = new Set([natsKey(start.getSnapshot())])
    const queue = [start.getPersistedSnapshot()]
    while (queue.length > 0) {
      const from = queue.shift()
      for (const event of natsEvents) {
        current = []
        const actor = createActor(natsConnectionMachine, { snapshot: from as never, inspect: (e) => void current.push(e as never) }).start()
        actor.send(event)
        for (const step of current) {
          for (const t of step._transitions ?? []) {
            const index = (t.source.transitions.get(t.eventType) ?? []).indexOf(t as never)
            taken.add(`${t.source.id} -> ${t.eventType} #${index}`)
          }
        }
        const key = natsKey(actor.getSnapshot())
        if (!seen.has(key)) {
          seen.add(key)
          queue.push(actor.getPersistedSnapshot())
        }
        actor.stop()
      }
    }
    expect(seen.size).toBeGreaterThan(50)
    expect([...declared].filter((t) => !taken.has(t))).toEqual([])
  })
})
