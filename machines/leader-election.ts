import { assign, fromPromise, setup } from 'xstate'

/**
 * Leader election on a Lease, as states: `candidate` (nobody known to hold it, trying to take
 * it), `follower` (another agent holds it; try again when it would expire), `leader` (we hold
 * it; renew every retry period; if no renewal succeeds within the renew deadline, step down at
 * once). A pure definition: the `attempt` actor (one get-and-create-or-update of the Lease) is a
 * named placeholder the runtime supplies with `.provide()`, and time comes from the actor's clock.
 * Same rules as client-go's leaderelection package; the runtime keeps the observed record.
 */

export interface LeaderElectionInput {
  readonly identity: string
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
}

/** The outcome of one attempt, as the runtime saw it. */
export type AttemptResult =
  /** We hold the lease now (created it, took over an expired one, or renewed ours). */
  | { readonly kind: 'held-by-us'; readonly at: number }
  /** Another holder's lease is valid; it expires (by our observation) in `expiresInMs`. */
  | { readonly kind: 'held-by-other'; readonly holder: string; readonly at: number; readonly expiresInMs: number }
  /** A write lost a race (409 Conflict): someone else wrote first. Try again after the retry period. */
  | { readonly kind: 'conflict'; readonly at: number }

export interface AttemptInput {
  readonly identity: string
  readonly leader: boolean
}

export interface LeaderElectionContext {
  readonly identity: string
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
  /** Who holds the lease, as last seen (ourselves when leading); null when unknown. */
  readonly holder: string | null
  /** Moves between candidate, follower and leader (the initial candidate state not counted). */
  readonly transitions: number
  /** Times this agent became leader. */
  readonly leaderships: number
  /** Clock time of our last successful acquire or renew. */
  readonly lastRenewAt: number | null
  /** Clock time of the last attempt that answered (any outcome). */
  readonly lastAttemptAt: number | null
  /** Delay before a follower's next attempt: the retry period, or less when the lease expires sooner. */
  readonly followerRetryMs: number
  readonly attempts: number
  readonly failures: number
  readonly lastError: string | null
  /** Why leadership was last lost: the renew deadline passed, or another holder was found. */
  readonly lostReason: string | null
}

export type LeaderElectionEvent = { readonly type: 'STOP' }

export const ELECTION_STATES = ['candidate', 'follower', 'leader', 'stopped'] as const
export type ElectionState = (typeof ELECTION_STATES)[number]

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message
  return typeof error === 'string' ? error : String(error)
}

type Done = { readonly output: AttemptResult }
const heldByUs = ({ event }: { event: unknown }) => (event as Done).output.kind === 'held-by-us'
const heldByOther = ({ event }: { event: unknown }) => (event as Done).output.kind === 'held-by-other'

/** An attempt, bounded by the renew deadline (a stalled network must not hang the loop). */
function attempting(leader: boolean, onUs: string, onOther: string, onRetry: string) {
  return {
    invoke: {
      src: 'attempt',
      input: ({ context }: { context: LeaderElectionContext }): AttemptInput => ({ identity: context.identity, leader }),
      onDone: [
        { guard: heldByUs, target: onUs, reenter: true, actions: ['countAttempt', 'recordUs'] },
        { guard: heldByOther, target: onOther, reenter: true, actions: ['countAttempt', 'recordOther'] },
        { target: onRetry, actions: ['countAttempt', 'recordConflict'] },
      ],
      onError: { target: onRetry, actions: ['countAttempt', 'recordFailure'] },
    },
    after: { attemptTimeout: { target: onRetry, actions: 'recordTimeout' } },
  } as const
}

export const leaderElectionMachine = setup({
  types: {
    context: {} as LeaderElectionContext,
    events: {} as LeaderElectionEvent,
    input: {} as LeaderElectionInput,
  },
  actors: {
    // Placeholder: the runtime provides the Lease I/O. Never holds the lease, so a bare machine can be walked.
    attempt: fromPromise<AttemptResult, AttemptInput>(async () => ({ kind: 'conflict', at: 0 })),
  },
  delays: {
    retry: ({ context }) => context.retryPeriodMs,
    followerRetry: ({ context }) => context.followerRetryMs,
    renewDeadline: ({ context }) => context.renewDeadlineMs,
    attemptTimeout: ({ context }) => context.renewDeadlineMs,
  },
  actions: {
    countTransition: assign({ transitions: ({ context }) => context.transitions + 1 }),
    /** Back to candidate counts as a transition; the initial candidate state does not. */
    countReturn: assign({ transitions: ({ context }) => context.transitions + (context.attempts > 0 ? 1 : 0) }),
    countLeadership: assign({ leaderships: ({ context }) => context.leaderships + 1 }),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    recordUs: assign(({ context, event }) => {
      const out = (event as unknown as Done).output
      return { holder: context.identity, lastRenewAt: out.at, lastAttemptAt: out.at, lastError: null }
    }),
    recordOther: assign(({ context, event }) => {
      const out = (event as unknown as Done).output
      if (out.kind !== 'held-by-other') return {}
      return {
        holder: out.holder,
        lastAttemptAt: out.at,
        lastError: null,
        followerRetryMs: Math.max(0, Math.min(context.retryPeriodMs, out.expiresInMs)),
      }
    }),
    recordConflict: assign(({ event }) => ({ lastAttemptAt: (event as unknown as Done).output.at })),
    recordFailure: assign(({ context, event }) => ({
      failures: context.failures + 1,
      lastError: errorText((event as unknown as { error: unknown }).error),
    })),
    recordTimeout: assign(({ context }) => ({
      failures: context.failures + 1,
      lastError: `no answer from the API server within ${context.renewDeadlineMs} ms`,
    })),
    lostByDeadline: assign(({ context }) => ({
      lostReason: `no renewal succeeded within the renew deadline (${context.renewDeadlineMs} ms)`,
      holder: null,
    })),
    lostToOther: assign(({ context }) => ({ lostReason: `the lease is held by ${context.holder ?? 'another agent'}` })),
  },
}).createMachine({
  id: 'election',
  context: ({ input }) => ({
    identity: input.identity,
    renewDeadlineMs: input.renewDeadlineMs,
    retryPeriodMs: input.retryPeriodMs,
    holder: null,
    transitions: 0,
    leaderships: 0,
    lastRenewAt: null,
    lastAttemptAt: null,
    followerRetryMs: input.retryPeriodMs,
    attempts: 0,
    failures: 0,
    lastError: null,
    lostReason: null,
  }),
  initial: 'candidate',
  on: { STOP: '.stopped' },
  states: {
    candidate: {
      entry: 'countReturn',
      initial: 'attempting',
      states: {
        attempting: attempting(false, '#election.leader', '#election.follower', 'waiting'),
        waiting: { after: { retry: 'attempting' } },
      },
    },
    follower: {
      entry: 'countTransition',
      initial: 'waiting',
      states: {
        // Re-entered after every attempt that finds the holder still valid, with a fresh delay.
        waiting: { after: { followerRetry: 'attempting' } },
        attempting: attempting(false, '#election.leader', '#election.follower.waiting', 'waiting'),
      },
    },
    leader: {
      entry: ['countTransition', 'countLeadership'],
      initial: 'holding',
      states: {
        // Entered afresh after every successful renewal: the deadline counts from the last one.
        holding: {
          after: { renewDeadline: { target: '#election.candidate', actions: 'lostByDeadline' } },
          initial: 'waiting',
          states: {
            waiting: { after: { retry: 'renewing' } },
            renewing: {
              invoke: {
                src: 'attempt',
                input: ({ context }: { context: LeaderElectionContext }): AttemptInput => ({ identity: context.identity, leader: true }),
                onDone: [
                  { guard: heldByUs, target: '#election.leader.holding', reenter: true, actions: ['countAttempt', 'recordUs'] },
                  { guard: heldByOther, target: '#election.follower', actions: ['countAttempt', 'recordOther', 'lostToOther'] },
                  { target: 'waiting', actions: ['countAttempt', 'recordConflict'] },
                ],
                onError: { target: 'waiting', actions: ['countAttempt', 'recordFailure'] },
              },
            },
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
})

/** The top-level state of an election snapshot's value. */
export function electionState(value: unknown): ElectionState {
  const top = typeof value === 'string' ? value : Object.keys((value ?? {}) as Record<string, unknown>)[0]
  return (ELECTION_STATES as readonly string[]).includes(top ?? '') ? (top as ElectionState) : 'candidate'
}
