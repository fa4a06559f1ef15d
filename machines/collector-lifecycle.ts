import { assign, fromPromise, sendParent, setup } from 'xstate'

/**
 * The lifecycle of one supervised collector. A pure definition: the named actors
 * (`startCollector`, `stopCollector`) are supplied by the supervisor runtime with `.provide()`;
 * the event pump (data plane) runs outside the machine and reports SOURCE_ENDED / SOURCE_FAILED.
 * Decisions after a failure (restart after a delay, give up) come from the parent supervisor.
 */

export interface CollectorLifecycleInput {
  readonly name: string
  readonly startTimeoutMs: number
  readonly stopTimeoutMs: number
  /** Carried over when a given-up collector gets a fresh actor, so the count goes on. */
  readonly restarts?: number
  readonly manualRestarts?: number
}

export interface CollectorLifecycleContext {
  readonly name: string
  readonly startTimeoutMs: number
  readonly stopTimeoutMs: number
  /** Incremented on every start attempt; stale reports from an older instance are ignored. */
  readonly generation: number
  /**
   * The one restart count of this registration: every start of a new instance after the first,
   * automatic (policy, strategy) or manual. `statistics()`, `health()`, `/metrics` and the
   * inspector all read this field.
   */
  readonly restarts: number
  /** Of `restarts`, those an operator asked for (`restartCollector`). */
  readonly manualRestarts: number
  /** Whether the restart under way was asked for by an operator. */
  readonly manualPending: boolean
  readonly lastError: string | null
  readonly exit: 'failure' | 'normal' | null
  readonly restartDelayMs: number
  readonly forcedStops: number
  readonly gaveUpReason: string | null
  /** Whether the last stop was abandoned after `stopTimeoutMs`. */
  readonly lastStopForced: boolean
}

export type CollectorLifecycleEvent =
  | { readonly type: 'START' }
  | { readonly type: 'STOP' }
  /** Manual restart (operator): release the instance, start a new one at once. */
  | { readonly type: 'RESTART' }
  /** The policy's answer to an exit: start a new instance after `delayMs`. */
  | { readonly type: 'RESTART_AFTER'; readonly delayMs: number }
  /** Strategy (one_for_all / rest_for_one): release the instance and wait for RESUME. */
  | { readonly type: 'SUSPEND' }
  /** Strategy: start the suspended collector again (its turn in start order). */
  | { readonly type: 'RESUME' }
  | { readonly type: 'GIVE_UP'; readonly reason: string }
  | { readonly type: 'SOURCE_ENDED'; readonly generation: number }
  | { readonly type: 'SOURCE_FAILED'; readonly generation: number; readonly error: string }
  | { readonly type: 'FAULT'; readonly generation: number; readonly error: string }

/** Notifications a collector actor sends to its parent (the supervisor). */
export type CollectorNotification =
  | { readonly type: 'COLLECTOR.RUNNING'; readonly name: string; readonly generation: number }
  | {
      readonly type: 'COLLECTOR.EXITED'
      readonly name: string
      readonly generation: number
      readonly exit: 'failure' | 'normal'
      readonly error: string | null
    }
  | { readonly type: 'COLLECTOR.STOPPED'; readonly name: string; readonly forced: boolean }
  | { readonly type: 'COLLECTOR.GAVE_UP'; readonly name: string; readonly reason: string }

export interface InstanceRef {
  readonly name: string
  readonly generation: number
}

export const LIFECYCLE_STATES = [
  'idle',
  'starting',
  'running',
  'failed',
  'restarting',
  'suspended',
  'stopping',
  'stopped',
  'gaveUp',
] as const
export type LifecycleState = (typeof LIFECYCLE_STATES)[number]

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message
  return typeof error === 'string' ? error : JSON.stringify(error) ?? String(error)
}

/**
 * Release the current instance (its `stop()`, bounded by the stop timeout) before going on to
 * `next`: used after a failure and before a manual restart, so there are never two live instances.
 */
function releasing<const Next extends string>(next: Next) {
  return {
    invoke: {
      id: 'release',
      src: 'stopCollector',
      input: ({ context }: { context: CollectorLifecycleContext }) => ({ name: context.name, generation: context.generation }),
      onDone: next,
      onError: next,
    },
    after: { stopTimeout: { target: next, actions: 'countForcedStop' } },
    on: { STOP: '#collector.stopping' },
  } as const
}

const sameGeneration = ({ context, event }: { context: CollectorLifecycleContext; event: CollectorLifecycleEvent }) =>
  'generation' in event && event.generation === context.generation

export const collectorLifecycleMachine = setup({
  types: {
    context: {} as CollectorLifecycleContext,
    events: {} as CollectorLifecycleEvent,
    input: {} as CollectorLifecycleInput,
  },
  actors: {
    // Placeholders: the runtime provides the real ones. They resolve so that a bare machine can be walked.
    startCollector: fromPromise<void, InstanceRef>(async () => {}),
    stopCollector: fromPromise<void, InstanceRef>(async () => {}),
  },
  delays: {
    startTimeout: ({ context }) => context.startTimeoutMs,
    stopTimeout: ({ context }) => context.stopTimeoutMs,
    restartDelay: ({ context }) => context.restartDelayMs,
  },
  guards: {
    sameGeneration,
  },
  actions: {
    countForcedStop: assign({ forcedStops: ({ context }) => context.forcedStops + 1 }),
    markManual: assign({ manualPending: true }),
    markAutomatic: assign({ manualPending: false }),
    /** A new instance is about to start in place of an old one: count it, once, here. */
    countRestart: assign(({ context }) => ({
      restarts: context.restarts + 1,
      manualRestarts: context.manualRestarts + (context.manualPending ? 1 : 0),
      manualPending: false,
    })),
    notifyRunning: sendParent(({ context }) => ({
      type: 'COLLECTOR.RUNNING' as const,
      name: context.name,
      generation: context.generation,
    })),
    notifyExited: sendParent(({ context }) => ({
      type: 'COLLECTOR.EXITED' as const,
      name: context.name,
      generation: context.generation,
      exit: context.exit ?? 'failure',
      error: context.lastError,
    })),
    notifyStopped: sendParent(({ context }) => ({
      type: 'COLLECTOR.STOPPED' as const,
      name: context.name,
      forced: context.lastStopForced,
    })),
    notifyGaveUp: sendParent(({ context }) => ({
      type: 'COLLECTOR.GAVE_UP' as const,
      name: context.name,
      reason: context.gaveUpReason ?? 'gave up',
    })),
  },
}).createMachine({
  id: 'collector',
  context: ({ input }) => ({
    name: input.name,
    startTimeoutMs: input.startTimeoutMs,
    stopTimeoutMs: input.stopTimeoutMs,
    generation: 0,
    restarts: input.restarts ?? 0,
    manualRestarts: input.manualRestarts ?? 0,
    manualPending: false,
    lastError: null,
    exit: null,
    restartDelayMs: 0,
    forcedStops: 0,
    gaveUpReason: null,
    lastStopForced: false,
  }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        START: 'starting',
        STOP: 'stopped',
      },
    },
    starting: {
      entry: assign({ generation: ({ context }) => context.generation + 1, exit: null, lastStopForced: false }),
      invoke: {
        id: 'start',
        src: 'startCollector',
        input: ({ context }) => ({ name: context.name, generation: context.generation }),
        onDone: 'running',
        onError: {
          target: 'failed',
          actions: assign({
            lastError: ({ event }) => `start failed: ${errorText(event.error)}`,
            exit: 'failure',
          }),
        },
      },
      after: {
        startTimeout: {
          target: 'failed',
          actions: assign({
            lastError: ({ context }) => `start timed out after ${context.startTimeoutMs} ms`,
            exit: 'failure',
          }),
        },
      },
      on: {
        STOP: 'stopping',
        // Leaving the state aborts the start (its signal); the instance is released before the next.
        RESTART: { target: 'restarting', actions: [assign({ restartDelayMs: 0 }), 'markManual'] },
        SUSPEND: 'suspended',
      },
    },
    running: {
      entry: 'notifyRunning',
      on: {
        SOURCE_ENDED: {
          guard: 'sameGeneration',
          target: 'failed',
          actions: assign({ exit: 'normal', lastError: 'event source ended' }),
        },
        SOURCE_FAILED: {
          guard: 'sameGeneration',
          target: 'failed',
          actions: assign({ exit: 'failure', lastError: ({ event }) => (event.type === 'SOURCE_FAILED' ? event.error : null) }),
        },
        FAULT: {
          guard: 'sameGeneration',
          target: 'failed',
          actions: assign({ exit: 'failure', lastError: ({ event }) => (event.type === 'FAULT' ? event.error : null) }),
        },
        STOP: 'stopping',
        // A manual restart goes at once; an earlier automatic backoff delay does not apply.
        RESTART: { target: 'restarting', actions: [assign({ restartDelayMs: 0 }), 'markManual'] },
        SUSPEND: 'suspended',
      },
    },
    failed: {
      initial: 'releasing',
      states: {
        releasing: { ...releasing('released'), on: { STOP: '#collector.stopping', SUSPEND: '#collector.suspended' } },
        released: {
          entry: 'notifyExited',
          on: {
            RESTART_AFTER: {
              target: '#collector.restarting.waiting',
              actions: [
                assign({
                  restartDelayMs: ({ event }) => (event.type === 'RESTART_AFTER' ? Math.max(0, event.delayMs) : 0),
                }),
                'markAutomatic',
              ],
            },
            RESTART: {
              target: '#collector.restarting.waiting',
              actions: [assign({ restartDelayMs: 0 }), 'markManual'],
            },
            // Already released: wait for RESUME without releasing again.
            SUSPEND: '#collector.suspended.held',
            GIVE_UP: {
              target: '#collector.gaveUp',
              actions: assign({ gaveUpReason: ({ event }) => (event.type === 'GIVE_UP' ? event.reason : null) }),
            },
            STOP: '#collector.stopped',
          },
        },
      },
    },
    restarting: {
      initial: 'releasing',
      states: {
        releasing: { ...releasing('waiting'), on: { STOP: '#collector.stopping', SUSPEND: '#collector.suspended' } },
        waiting: {
          after: {
            restartDelay: { target: '#collector.starting', actions: 'countRestart' },
          },
          on: {
            STOP: '#collector.stopped',
            SUSPEND: '#collector.suspended.held',
            // A manual restart does not wait out the policy's backoff.
            RESTART: { target: '#collector.starting', actions: ['markManual', 'countRestart'] },
          },
        },
      },
    },
    // Stopped by the strategy because a sibling failed (OTP one_for_all / rest_for_one): the
    // instance is released, then the supervisor restarts the group in start order with RESUME.
    suspended: {
      initial: 'releasing',
      states: {
        releasing: releasing('held'),
        held: {
          on: {
            RESUME: { target: '#collector.starting', actions: ['markAutomatic', 'countRestart'] },
            RESTART: { target: '#collector.starting', actions: ['markManual', 'countRestart'] },
            STOP: '#collector.stopped',
          },
        },
      },
    },
    stopping: {
      invoke: {
        id: 'stop',
        src: 'stopCollector',
        input: ({ context }) => ({ name: context.name, generation: context.generation }),
        onDone: 'stopped',
        onError: {
          target: 'stopped',
          actions: assign({ lastError: ({ event }) => `stop failed: ${errorText(event.error)}` }),
        },
      },
      after: {
        stopTimeout: {
          target: 'stopped',
          actions: assign({
            forcedStops: ({ context }) => context.forcedStops + 1,
            lastStopForced: true,
            lastError: ({ context }) => `stop timed out after ${context.stopTimeoutMs} ms; force-stopped`,
          }),
        },
      },
    },
    stopped: {
      entry: 'notifyStopped',
      on: {
        START: 'starting',
        RESTART: { target: 'starting', actions: ['markManual', 'countRestart'] },
      },
    },
    gaveUp: {
      type: 'final',
      entry: 'notifyGaveUp',
    },
  },
})

export type CollectorLifecycleMachine = typeof collectorLifecycleMachine
