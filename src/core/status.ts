/**
 * Component status, after the OpenTelemetry Collector's status model: an explicit whitelist of
 * transitions; permanent_error, fatal_error and stopped are terminal for one instance.
 */
export type ComponentStatus =
  | 'starting'
  | 'ok'
  | 'recoverable_error'
  | 'permanent_error'
  | 'fatal_error'
  | 'stopping'
  | 'stopped'

export const COMPONENT_STATUSES: readonly ComponentStatus[] = [
  'starting',
  'ok',
  'recoverable_error',
  'permanent_error',
  'fatal_error',
  'stopping',
  'stopped',
]

/** What a collector may say about itself in `health()`. */
export type SelfReportedStatus = 'ok' | 'recoverable_error' | 'permanent_error' | 'fatal_error'

const allowed: Readonly<Record<ComponentStatus, readonly ComponentStatus[]>> = {
  starting: ['ok', 'recoverable_error', 'permanent_error', 'fatal_error', 'stopping'],
  ok: ['recoverable_error', 'permanent_error', 'fatal_error', 'stopping'],
  recoverable_error: ['ok', 'permanent_error', 'fatal_error', 'stopping'],
  permanent_error: ['stopping'],
  fatal_error: [],
  stopping: ['recoverable_error', 'permanent_error', 'fatal_error', 'stopped'],
  stopped: [],
}

export function isAllowedStatusTransition(from: ComponentStatus, to: ComponentStatus): boolean {
  return allowed[from].includes(to)
}

const rank: Readonly<Record<ComponentStatus, number>> = {
  ok: 0,
  stopped: 1,
  starting: 2,
  stopping: 3,
  recoverable_error: 4,
  permanent_error: 5,
  fatal_error: 6,
}

/** The aggregate of several components is the worst of them (OTel's aggregation rule). */
export function aggregateStatus(statuses: Iterable<ComponentStatus>): ComponentStatus {
  let worst: ComponentStatus | undefined
  for (const s of statuses) if (worst === undefined || rank[s] > rank[worst]) worst = s
  return worst ?? 'ok'
}

/** Readiness as healthcheckv2 maps it: only ok is ready. */
export function isReady(status: ComponentStatus): boolean {
  return status === 'ok'
}
