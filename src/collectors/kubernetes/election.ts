/**
 * Runs the leader-election machine (machines/leader-election.ts) against a Lease: supplies its
 * `attempt` actor (LeaseLock), runs it on the collector's clock, and turns its state changes
 * into calls: started leading (with the annotations of the record it replaced), renewed (what
 * the write carried), stopped leading (synchronously, in the same tick the machine left `leader`).
 */
import { hostname } from 'node:os'
import type { KubeConfig } from '@kubernetes/client-node'
import { type Actor, createActor, fromPromise } from 'xstate'
import {
  type AttemptInput,
  type AttemptResult,
  type ElectionState,
  electionState,
  leaderElectionMachine,
} from '../../../machines/leader-election.js'
import type { Clock } from '../../core/clock.js'
import type { LeaderElectionConfig } from './election-config.js'
import { type HeldLease, LeaseLock } from './lease.js'

export interface ElectionStatus {
  readonly state: ElectionState
  readonly identity: string
  readonly lease: string
  /** Who holds the lease as last seen; null when unknown. */
  readonly holder: string | null
  readonly transitions: number
  readonly leaderships: number
  /** Milliseconds since our last successful acquire or renewal (null before the first). */
  readonly sinceRenewMs: number | null
  /** Milliseconds since the last attempt that got an answer. */
  readonly sinceAttemptMs: number | null
  readonly attempts: number
  readonly failures: number
  readonly lastError: string | null
  readonly lostReason: string | null
}

export interface ElectorOptions {
  readonly kc: KubeConfig
  readonly config: LeaderElectionConfig
  readonly clock: Clock
  /** Written with every acquire and renewal. */
  readonly annotations: () => Readonly<Record<string, string>>
  readonly onStartedLeading: (held: HeldLease) => void
  readonly onRenewed: (held: HeldLease) => void
  readonly onStoppedLeading: (reason: string) => void
}

export function defaultIdentity(): string {
  return `${hostname()}_${process.pid}`
}

export class LeaderElector {
  readonly identity: string
  private readonly lock: LeaseLock
  private actor: Actor<typeof leaderElectionMachine> | undefined
  private state: ElectionState = 'candidate'
  private lastRenewAt: number | null = null
  private context: ReturnType<Actor<typeof leaderElectionMachine>['getSnapshot']>['context'] | undefined

  constructor(private readonly opts: ElectorOptions) {
    this.identity = opts.config.identity ?? defaultIdentity()
    this.lock = new LeaseLock({
      kc: opts.kc,
      namespace: opts.config.namespace,
      name: opts.config.leaseName,
      identity: this.identity,
      leaseDurationMs: opts.config.leaseDurationMs,
      clock: opts.clock,
      annotations: opts.annotations,
    })
  }

  get leading(): boolean {
    return this.state === 'leader'
  }

  start(): void {
    if (this.actor) return
    const lock = this.lock
    const machine = leaderElectionMachine.provide({
      actors: {
        attempt: fromPromise<AttemptResult, AttemptInput>(({ signal }) => lock.attempt(signal)),
      },
    })
    const actor = createActor(machine, {
      input: {
        identity: this.identity,
        renewDeadlineMs: this.opts.config.renewDeadlineMs,
        retryPeriodMs: this.opts.config.retryPeriodMs,
      },
      clock: this.opts.clock,
    })
    actor.subscribe({
      next: (snapshot) => {
        this.context = snapshot.context
        const next = electionState(snapshot.value)
        const prev = this.state
        this.state = next
        const held = lock.held()
        if (next === 'leader' && prev !== 'leader' && held) {
          this.lastRenewAt = snapshot.context.lastRenewAt
          this.opts.onStartedLeading(held)
          this.opts.onRenewed(held)
        } else if (prev === 'leader' && next !== 'leader') {
          this.opts.onStoppedLeading(snapshot.context.lostReason ?? (next === 'stopped' ? 'stopped' : 'lost the lease'))
        } else if (next === 'leader' && held && snapshot.context.lastRenewAt !== this.lastRenewAt) {
          this.lastRenewAt = snapshot.context.lastRenewAt
          this.opts.onRenewed(held)
        }
      },
      // The machine handles the attempt's failures itself; this only keeps XState from rethrowing.
      error: () => {},
    })
    this.actor = actor
    actor.start()
  }

  /** Stops electing; a leader gives the lease up (bounded by `timeoutMs`) so a successor need not wait. */
  /** Resolves true when the lease was given up (it was ours and the write succeeded). */
  async stop(timeoutMs = 2_000): Promise<boolean> {
    const actor = this.actor
    if (!actor) return false
    this.actor = undefined
    const wasLeader = this.state === 'leader'
    actor.send({ type: 'STOP' })
    actor.stop()
    if (!wasLeader) return false
    try {
      return await this.lock.release(AbortSignal.timeout(timeoutMs))
    } catch {
      // Best effort: the lease then expires on its own.
      return false
    }
  }

  status(): ElectionStatus {
    const ctx = this.context
    const now = this.opts.clock.now()
    return {
      state: this.state,
      identity: this.identity,
      lease: `${this.opts.config.namespace}/${this.opts.config.leaseName}`,
      holder: ctx?.holder ?? null,
      transitions: ctx?.transitions ?? 0,
      leaderships: ctx?.leaderships ?? 0,
      sinceRenewMs: ctx?.lastRenewAt != null ? now - ctx.lastRenewAt : null,
      sinceAttemptMs: ctx?.lastAttemptAt != null ? now - ctx.lastAttemptAt : null,
      attempts: ctx?.attempts ?? 0,
      failures: ctx?.failures ?? 0,
      lastError: ctx?.lastError ?? null,
      lostReason: ctx?.lostReason ?? null,
    }
  }
}
