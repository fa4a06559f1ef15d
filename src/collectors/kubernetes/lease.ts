/**
 * One attempt to take or keep a `coordination.k8s.io/v1` Lease, through `@kubernetes/client-node`
 * (get, then create or update with the read resourceVersion, so a concurrent writer makes ours
 * fail with 409 Conflict). The rules are client-go's `tryAcquireOrRenew`:
 *
 * - no Lease: create it holding it;
 * - held by us: renew (renewTime = now);
 * - held by another and not expired: follow;
 * - held by nobody or expired: take it (acquireTime = now, leaseTransitions + 1).
 *
 * Expiry is judged by the local clock, never by the times written in the Lease (clocks of nodes
 * differ): a lease counts as renewed at the latest when we first see a new version of it, and as
 * renewed no earlier than our previous poll that still saw the old version. We count from that
 * previous poll, which lets a follower take over at most `leaseDuration` after the holder's last
 * renewal instead of up to a retry period later; it stays safe as long as the holder steps down
 * (renew deadline) before that, which the config enforces (leaseDuration ≥ renewDeadline +
 * retryPeriod).
 */
import { CoordinationV1Api, type KubeConfig, setHeaderMiddleware, type V1Lease, V1MicroTime } from '@kubernetes/client-node'
import type { AttemptResult } from '../../../machines/leader-election.js'
import type { Clock } from '../../core/clock.js'

export interface LeaseOptions {
  readonly kc: KubeConfig
  readonly namespace: string
  readonly name: string
  readonly identity: string
  readonly leaseDurationMs: number
  readonly clock: Clock
  /** Annotations written with every acquire and renewal (the holder's progress). */
  readonly annotations?: () => Readonly<Record<string, string>>
}

/** An attempt that held the lease: what it wrote, and the record it replaced (for handover). */
export interface HeldLease {
  readonly written: Readonly<Record<string, string>>
  /** Annotations of the record our write replaced (none when we created the Lease). */
  readonly previous?: Readonly<Record<string, string>>
  readonly acquired: boolean
}

function statusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number') return err.code
  return undefined
}

type CallOptions = Parameters<CoordinationV1Api['readNamespacedLease']>[1]

/**
 * Per-call options that abort the request with `signal` (a stalled network must not leave
 * requests hanging). The client's middlewares are observable-based and it exports no way to make
 * one but `setHeaderMiddleware`: we extend that one (its header, Accept: application/json, is
 * what we ask for anyway).
 */
function withSignal(signal: AbortSignal): CallOptions {
  const base = setHeaderMiddleware('Accept', 'application/json')
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal)
          return base.pre(ctx)
        },
        post: (r) => base.post(r),
      },
    ],
    middlewareMergeStrategy: 'append',
  }
}

export class LeaseLock {
  private readonly api: CoordinationV1Api
  /** The last record version seen, and since when (local clock) it counts as renewed. */
  private observedVersion: string | undefined
  private observedSince = 0
  private lastPollAt: number | undefined
  private lastHeld: HeldLease | undefined
  leaseTransitions = 0

  constructor(private readonly opts: LeaseOptions) {
    this.api = opts.kc.makeApiClient(CoordinationV1Api)
  }

  /** What the last successful acquire or renewal wrote and replaced. */
  held(): HeldLease | undefined {
    return this.lastHeld
  }

  async attempt(signal: AbortSignal): Promise<AttemptResult> {
    const { namespace, name, identity, clock } = this.opts
    const options = withSignal(signal)
    const pollStart = clock.now()
    let current: V1Lease | undefined
    try {
      current = await this.api.readNamespacedLease({ name, namespace }, options)
    } catch (err) {
      if (statusCode(err) !== 404) throw err
    }
    const now = clock.now()
    if (current === undefined) {
      const annotations = this.opts.annotations?.() ?? {}
      try {
        await this.api.createNamespacedLease({ namespace, body: this.record(undefined, annotations, now) }, options)
      } catch (err) {
        if (statusCode(err) === 409) return { kind: 'conflict', at: clock.now() }
        throw err
      }
      this.lastHeld = { written: annotations, acquired: true }
      this.lastPollAt = pollStart
      return { kind: 'held-by-us', at: clock.now() }
    }
    const version = current.metadata?.resourceVersion
    if (version !== this.observedVersion) {
      // Changed since our last look: renewed at some moment after our previous poll.
      this.observedVersion = version
      this.observedSince = this.lastPollAt ?? pollStart
    }
    this.lastPollAt = pollStart
    const spec = current.spec ?? {}
    const holder = spec.holderIdentity ?? ''
    this.leaseTransitions = spec.leaseTransitions ?? 0
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.opts.leaseDurationMs / 1000)) * 1000
    const expiresAt = this.observedSince + durationMs
    if (holder !== '' && holder !== identity && expiresAt > now) {
      return { kind: 'held-by-other', holder, at: now, expiresInMs: expiresAt - now }
    }
    const annotations = this.opts.annotations?.() ?? {}
    const body = this.record(current, annotations, now)
    try {
      const written = await this.api.replaceNamespacedLease({ name, namespace, body }, options)
      this.observedVersion = written.metadata?.resourceVersion
      this.observedSince = clock.now()
    } catch (err) {
      if (statusCode(err) === 409) return { kind: 'conflict', at: clock.now() }
      throw err
    }
    this.lastHeld = { written: annotations, acquired: holder !== identity, previous: current.metadata?.annotations ?? {} }
    return { kind: 'held-by-us', at: clock.now() }
  }

  /** Gives the lease up (a graceful stop): the next candidate need not wait for it to expire. */
  async release(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity } = this.opts
    const options = withSignal(signal)
    const current = await this.api.readNamespacedLease({ name, namespace }, options)
    if (current.spec?.holderIdentity !== identity) return false
    const annotations = this.opts.annotations?.() ?? {}
    const body: V1Lease = {
      ...current,
      metadata: { ...current.metadata, annotations: { ...current.metadata?.annotations, ...annotations } },
      spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1 },
    }
    await this.api.replaceNamespacedLease({ name, namespace, body }, options)
    return true
  }

  private record(current: V1Lease | undefined, annotations: Readonly<Record<string, string>>, now: number): V1Lease {
    const spec = current?.spec ?? {}
    const ours = spec.holderIdentity === this.opts.identity
    const at = new V1MicroTime(now)
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...(current?.metadata ?? {}),
        name: this.opts.name,
        namespace: this.opts.namespace,
        annotations: { ...(current?.metadata?.annotations ?? {}), ...annotations },
      },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : at,
        renewTime: at,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (current !== undefined && !ours && (spec.holderIdentity ?? '') !== '' ? 1 : 0),
      },
    }
  }
}
