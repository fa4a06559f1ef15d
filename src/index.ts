/**
 * `tapio-collector-manager`: the supervisor and everything needed to write and run collectors.
 *
 * Kept light on purpose (no NATS, prom-client, Kubernetes client or D-Bus): the real collectors,
 * outputs and the inspector are separate entry points (`tapio-collector-manager/ebpf`,
 * `/kubernetes`, `/systemd`, `/cni`, `/nats`, `/inspector`, `/machines`). Internals such as the
 * merge buffer and the policy's `decide` are not exported.
 */
import './peers.js'

export type { Collector, CollectorFactory, CollectorHealth, CollectorOutput } from './core/collector.js'
export { CollectorStateError, isCollector } from './core/collector.js'
export * from './core/status.js'
export * from './core/handoff-queue.js'
export * from './core/statistics.js'
export * from './events/index.js'
export {
  CollectorManager,
  CollectorStartError,
  ManagerStateError,
  type CollectorHealthReport,
  type CollectorManagerOptions,
  type CollectorStatistics,
  type HealthReport,
  type ManagerStatistics,
  type StopOptions,
  type StopSummary,
} from './manager/collector-manager.js'
export { DROP_REASONS, sumDrops, type DropCounts, type DropReason } from './stream/counters.js'
export { OVERFLOW_POLICIES, type OverflowPolicy, type SampleOptions } from './stream/merge-buffer.js'
export {
  DEFAULT_RESTART_POLICY,
  InvalidPolicyError,
  resolvePolicy,
  type BackoffPolicy,
  type OnIntensityExceeded,
  type PolicyOverrides,
  type RestartBudget,
  type RestartPolicy,
  type RestartType,
} from './supervisor/policy.js'
export { RESTART_STRATEGIES, type RestartStrategy } from './supervisor/strategy.js'
export * from './supervisor/lifecycle-events.js'
export { type Clock, ManualClock, systemClock } from './core/clock.js'
export * from './collectors/synthetic/index.js'
export { effectCollector, type EffectCollectorSpec } from './core/effect-collector.js'
export * from './processors/index.js'
