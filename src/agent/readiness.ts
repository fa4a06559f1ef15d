import { aggregateStatus, type ComponentStatus } from '../core/status.js'
import type { HealthReport } from '../manager/collector-manager.js'
import type { LifecycleEvent } from '../supervisor/lifecycle-events.js'

/** Which collectors the agent's readiness depends on (`readiness.require` in the config). */
export type ReadinessRequirement = 'all' | 'any' | readonly string[]

export interface ReadinessPolicy {
  readonly require: ReadinessRequirement
  /** How long a collector being restarted by its policy still counts as ready (ms). */
  readonly graceMs: number
}

export interface ReadinessEntry {
  readonly name: string
  readonly status: ComponentStatus | 'absent'
  readonly state: string
  /** Why it is not ok: the last error, or the collector's own health message. */
  readonly reason: string | null
  readonly required: boolean
}

export interface ReadinessReport {
  readonly ready: boolean
  /** The aggregate status (OpenTelemetry rule) as /readyz reports it. */
  readonly status: ComponentStatus
  readonly require: ReadinessRequirement
  /** What keeps the agent from being ready (or would, were it required). */
  readonly failing: readonly ReadinessEntry[]
  /** Being restarted within the policy's budget: ready until `until`. */
  readonly grace: readonly (ReadinessEntry & { readonly until: string })[]
  /** Stopped on purpose (an operator, or a policy that does not restart it): not counted. */
  readonly ignored: readonly string[]
}

export interface OutputReadiness {
  readonly name: string
  readonly ready: boolean
  readonly lastError: string | null
  /** The output's state in words when not ready (default `unavailable`). */
  readonly state?: string
}

const RESTARTING = new Set(['failed', 'restarting'])

/**
 * The agent's readiness, from the collectors' health and what the supervisor is doing:
 * - a collector stopped on purpose does not count (by an operator, or by its policy after a
 *   normal end); one its policy stopped after a failure (`temporary`) does;
 * - a collector its policy is restarting counts as ready for `graceMs` from its first failure
 *   (it may recover); one that was given up on (its budget spent) or stays down longer does not;
 * - `require` says whether all counted collectors, any one of them, or only the named ones must be ok.
 * Outputs that are unavailable (NATS) and an agent that escalated or is stopping are never ready.
 */
export class Readiness {
  /** First failure of the current bad spell, per collector (cleared when it runs again). */
  private readonly downSince = new Map<string, number>()
  /** The last failure's error, per collector, until it runs again. */
  private readonly lastFailure = new Map<string, string>()
  /** Stopped by its policy after a failure (a `temporary` collector that crashed): not on purpose. */
  private readonly stoppedFailed = new Map<string, string>()

  constructor(private policy: ReadinessPolicy) {}

  setPolicy(policy: ReadinessPolicy): void {
    this.policy = policy
  }

  observe(e: LifecycleEvent, now: number): void {
    switch (e.type) {
      case 'failed':
        if (!this.downSince.has(e.collector)) this.downSince.set(e.collector, now)
        if (e.exit === 'failure') this.lastFailure.set(e.collector, e.error ?? 'failed')
        else this.lastFailure.delete(e.collector)
        return
      case 'recovered':
        this.downSince.delete(e.collector)
        this.lastFailure.delete(e.collector)
        this.stoppedFailed.delete(e.collector)
        return
      case 'stopped': {
        this.downSince.delete(e.collector)
        const failure = this.lastFailure.get(e.collector)
        if (e.by === 'policy' && failure !== undefined) this.stoppedFailed.set(e.collector, failure)
        else this.stoppedFailed.delete(e.collector)
        this.lastFailure.delete(e.collector)
        return
      }
      default:
        return
    }
  }

  /** `phase`: the manager's (only a running manager can be ready). */
  evaluate(health: HealthReport, phase: string, outputs: readonly OutputReadiness[], now: number): ReadinessReport {
    const require = this.policy.require
    const named = Array.isArray(require) ? new Set<string>(require) : undefined
    const failing: ReadinessEntry[] = []
    const grace: (ReadinessEntry & { until: string })[] = []
    const ignored: string[] = []
    let counted = 0
    let readyCount = 0
    for (const [name, c] of Object.entries(health.collectors)) {
      const required = named ? named.has(name) : true
      const crashed = c.status === 'stopped' ? this.stoppedFailed.get(name) : undefined
      if (c.status === 'stopped' && crashed === undefined && !named?.has(name)) {
        ignored.push(name)
        continue
      }
      if (crashed !== undefined) {
        if (required) counted += 1
        failing.push({ name, status: c.status, state: c.state, reason: `stopped after a failure its policy does not restart: ${crashed}`, required })
        continue
      }
      const entry: ReadinessEntry = { name, status: c.status, state: c.state, reason: c.status === 'ok' ? null : (c.message ?? c.lastError ?? null), required }
      if (required) counted += 1
      if (c.status === 'ok') {
        if (required) readyCount += 1
        continue
      }
      const since = this.downSince.get(name)
      const top = c.state.split('.')[0] ?? c.state
      const restarting = RESTARTING.has(top) || (top === 'starting' && since !== undefined)
      if (restarting && since !== undefined && now - since < this.policy.graceMs) {
        grace.push({ ...entry, until: new Date(since + this.policy.graceMs).toISOString() })
        if (required) readyCount += 1
        continue
      }
      failing.push(entry)
    }
    if (named) {
      for (const name of named) {
        if (health.collectors[name]) continue
        counted += 1
        failing.push({ name, status: 'absent', state: 'not running', reason: 'required by readiness.require but not running on this agent (disabled, skipped or unknown)', required: true })
      }
    }
    const collectorsReady = require === 'any' ? counted === 0 || readyCount > 0 : readyCount === counted
    const badOutputs = outputs.filter((o) => !o.ready)
    for (const o of badOutputs) failing.push({ name: `output:${o.name}`, status: 'recoverable_error', state: o.state ?? 'unavailable', reason: o.lastError, required: true })
    const running = phase === 'running' && health.status !== 'fatal_error'
    const ready = running && collectorsReady && badOutputs.length === 0
    let status: ComponentStatus
    if (!running) status = health.status
    else if (ready) status = 'ok'
    else status = aggregateStatus(['recoverable_error', ...failing.filter((f) => f.required && f.status !== 'absent').map((f) => f.status as ComponentStatus)])
    return { ready, status, require, failing, grace, ignored }
  }
}
