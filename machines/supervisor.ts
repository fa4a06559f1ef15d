import { assign, enqueueActions, setup, stopChild } from 'xstate'
import { type CollectorLifecycleEvent, type CollectorNotification, collectorLifecycleMachine } from './collector-lifecycle.js'

/**
 * The supervisor: owns one collector actor per registered name (spawned children, ids = names),
 * keeps registration order, tracks its own phase, and routes commands to children.
 * Restart decisions are not made here: the runtime supplies `onChildNotification`, which applies
 * the restart policy (pure functions in src/supervisor/policy.ts) and answers with COMMAND events.
 */

export interface ChildSpec {
  readonly name: string
  readonly startTimeoutMs: number
  readonly stopTimeoutMs: number
  /** Counts carried over from an actor this one replaces. */
  readonly restarts?: number
  readonly manualRestarts?: number
}

export interface SupervisorContext {
  /** Registration order: start in this order, stop in reverse. */
  readonly order: readonly string[]
  readonly escalation: string | null
}

export type SupervisorEvent =
  /** `at`: position in start order (a replaced actor keeps its place); default: last. */
  | { readonly type: 'ADD'; readonly child: ChildSpec; readonly at?: number }
  | { readonly type: 'REMOVE'; readonly name: string }
  | { readonly type: 'START' }
  | { readonly type: 'STARTED' }
  | { readonly type: 'STOP' }
  | { readonly type: 'STOPPED' }
  | { readonly type: 'ESCALATE'; readonly reason: string }
  | { readonly type: 'COMMAND'; readonly name: string; readonly command: CollectorLifecycleEvent }
  | CollectorNotification

export const SUPERVISOR_STATES = ['idle', 'starting', 'running', 'stopping', 'stopped', 'escalated'] as const
export type SupervisorState = (typeof SUPERVISOR_STATES)[number]

const hasChild = ({ context, event }: { context: SupervisorContext; event: SupervisorEvent }) =>
  (event.type === 'REMOVE' || event.type === 'COMMAND') && context.order.includes(event.name)

const canAdd = ({ context, event }: { context: SupervisorContext; event: SupervisorEvent }) =>
  event.type === 'ADD' && !context.order.includes(event.child.name)

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
  },
  actors: {
    collector: collectorLifecycleMachine,
  },
  guards: { hasChild, canAdd },
  actions: {
    // Supplied by the runtime: apply the restart policy, update health, wake waiters.
    onChildNotification: (_: unknown, _params: CollectorNotification) => {},
    spawnCollector: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'ADD') return
      const { name } = event.child
      enqueue.spawnChild('collector', { id: name, input: event.child })
      const at = event.at
      enqueue.assign({
        order: ({ context }) =>
          at === undefined || at >= context.order.length
            ? [...context.order, name]
            : [...context.order.slice(0, Math.max(0, at)), name, ...context.order.slice(Math.max(0, at))],
      })
    }),
    removeCollector: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'REMOVE') return
      enqueue(stopChild(event.name))
      enqueue.assign({ order: ({ context }) => context.order.filter((n) => n !== event.name) })
    }),
    forwardCommand: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'COMMAND') return
      enqueue.sendTo(event.name, event.command)
    }),
  },
}).createMachine({
  id: 'supervisor',
  context: { order: [], escalation: null },
  initial: 'idle',
  on: {
    ADD: { guard: 'canAdd', actions: 'spawnCollector' },
    REMOVE: { guard: 'hasChild', actions: 'removeCollector' },
    COMMAND: { guard: 'hasChild', actions: 'forwardCommand' },
    'COLLECTOR.RUNNING': { actions: { type: 'onChildNotification', params: ({ event }) => event } },
    'COLLECTOR.EXITED': { actions: { type: 'onChildNotification', params: ({ event }) => event } },
    'COLLECTOR.STOPPED': { actions: { type: 'onChildNotification', params: ({ event }) => event } },
    'COLLECTOR.GAVE_UP': { actions: { type: 'onChildNotification', params: ({ event }) => event } },
  },
  states: {
    idle: {
      on: { START: 'starting', STOP: 'stopping' },
    },
    starting: {
      on: {
        STARTED: 'running',
        STOP: 'stopping',
        ESCALATE: { target: 'escalated', actions: assign({ escalation: ({ event }) => event.reason }) },
      },
    },
    running: {
      on: {
        STOP: 'stopping',
        ESCALATE: { target: 'escalated', actions: assign({ escalation: ({ event }) => event.reason }) },
      },
    },
    // Escalation (OTP style): the runtime stops every child and then the supervisor itself.
    escalated: {
      on: { STOP: 'stopping' },
    },
    stopping: {
      on: { STOPPED: 'stopped' },
    },
    stopped: {
      type: 'final',
    },
  },
})

export type SupervisorMachine = typeof supervisorMachine
