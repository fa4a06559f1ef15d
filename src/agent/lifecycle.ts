import type { InspectionEvent } from 'xstate'
import type { CollectorManager } from '../manager/collector-manager.js'
import type { RestartPolicy } from '../supervisor/policy.js'

/**
 * Supervision as typed facts for operators: what failed and why, what the policy decided, how it
 * ended. The agent logs each one (one line) and can put them into the stream.
 */
export type LifecycleEvent =
  | { readonly type: 'failed'; readonly collector: string; readonly error: string; readonly exit: 'failure' | 'normal' }
  | {
      readonly type: 'restart-scheduled'
      readonly collector: string
      readonly delayMs: number
      /** This restart is the n-th within the policy's window... */
      readonly restart: number
      /** ...of at most this many (then the policy gives up or escalates). */
      readonly maxRestarts: number
      readonly withinMs: number
    }
  | { readonly type: 'recovered'; readonly collector: string; readonly afterFailures: number }
  | { readonly type: 'gave-up'; readonly collector: string; readonly reason: string }
  | { readonly type: 'escalated'; readonly reason: string }
  | { readonly type: 'stopped'; readonly collector: string; readonly forced: boolean }

export type LifecycleListener = (event: LifecycleEvent) => void

interface CollectorTrack {
  /** Failures since the collector last ran (0 while healthy). */
  failures: number
  /** Times of restarts scheduled, for "n of max within the window". */
  restartTimes: number[]
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null
}

/**
 * The one place that turns the supervisor's activity into LifecycleEvents. It reads the
 * messages the supervisor actor receives (XState inspection: `COLLECTOR.*` notifications from its
 * children, the `COMMAND`s the restart policy answers with, `ESCALATE`), so what it reports is
 * what the actors do. When the supervisor exposes typed lifecycle events itself, only this
 * function changes.
 */
export function watchLifecycle(
  manager: CollectorManager,
  policyOf: (collector: string) => Pick<RestartPolicy, 'maxRestarts' | 'withinMs'>,
  listener: LifecycleListener,
  now: () => number = Date.now,
): () => void {
  const tracks = new Map<string, CollectorTrack>()
  const track = (name: string) => {
    let t = tracks.get(name)
    if (!t) tracks.set(name, (t = { failures: 0, restartTimes: [] }))
    return t
  }
  return manager.addInspector((ie: InspectionEvent) => {
    if (ie.type !== '@xstate.event') return
    // Only messages to the root actor (the supervisor): children may be named anything.
    if (ie.actorRef.sessionId !== ie.rootId) return
    const e = ie.event as Record<string, unknown>
    const name = typeof e.name === 'string' ? e.name : ''
    switch (e.type) {
      case 'COLLECTOR.EXITED': {
        track(name).failures += 1
        listener({
          type: 'failed',
          collector: name,
          error: typeof e.error === 'string' ? e.error : 'unknown error',
          exit: e.exit === 'normal' ? 'normal' : 'failure',
        })
        return
      }
      case 'COLLECTOR.RUNNING': {
        const t = track(name)
        if (t.failures > 0) listener({ type: 'recovered', collector: name, afterFailures: t.failures })
        t.failures = 0
        return
      }
      case 'COLLECTOR.GAVE_UP': {
        const t = track(name)
        t.failures = 0
        t.restartTimes = []
        listener({ type: 'gave-up', collector: name, reason: typeof e.reason === 'string' ? e.reason : 'gave up' })
        return
      }
      case 'COLLECTOR.STOPPED':
        tracks.delete(name)
        listener({ type: 'stopped', collector: name, forced: e.forced === true })
        return
      case 'ESCALATE':
        listener({ type: 'escalated', reason: typeof e.reason === 'string' ? e.reason : 'escalated' })
        return
      case 'COMMAND': {
        const command = e.command
        if (!isObject(command) || command.type !== 'RESTART_AFTER') return
        const policy = policyOf(name)
        const t = track(name)
        const at = now()
        t.restartTimes = [...t.restartTimes.filter((x) => at - x < policy.withinMs), at]
        listener({
          type: 'restart-scheduled',
          collector: name,
          delayMs: typeof command.delayMs === 'number' ? command.delayMs : 0,
          restart: t.restartTimes.length,
          maxRestarts: policy.maxRestarts,
          withinMs: policy.withinMs,
        })
        return
      }
    }
  })
}
