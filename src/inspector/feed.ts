import type { ServerResponse } from 'node:http'
import type { InspectionEvent } from 'xstate'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { supervisorMachine } from '../../machines/supervisor.js'
import { eventLabel, type MachineGraph, machineGraph } from './machine-graph.js'
import { type SseCounts, type SseLimits, SseClients, sseFrame } from './sse-clients.js'

/** What the feed needs from the agent (kept small so the page can be tested with any source). */
export interface InspectorSource {
  readonly manager: {
    addInspector(fn: (e: InspectionEvent) => void): () => void
    actors(): { id: string; state: string; context: Record<string, unknown> }[]
    /** OpenTelemetry-style statuses, so the page colours collectors by the manager's own verdict. */
    health?(): InspectorHealth
  }
  eventRates(): Readonly<Record<string, number>>
  /** Masks secrets in every frame (errors in contexts and transitions can quote URLs with passwords). */
  readonly redact?: (text: string) => string
}

export interface InspectorHealth {
  readonly status: string
  readonly collectors: Readonly<Record<string, InspectorCollectorHealth>>
}

interface InspectorCollectorHealth {
  readonly status: string
  readonly message?: string
  readonly restartBudget?: { readonly maxRestarts: number; readonly withinMs: number; readonly used: number; readonly remaining: number }
}

export interface TransitionRecord {
  readonly seq: number
  readonly time: string
  /** `supervisor` or `collector:<name>`. */
  readonly actor: string
  readonly from: string | null
  readonly to: string
  /** XState's event type, as the diagram's edges carry it. */
  readonly event: string
  /** The event as a person reads it (`backoff elapsed`, not `xstate.after.restartDelay.…`). */
  readonly label: string
  /** What the event carried that explains the step: an error, a delay, a reason. */
  readonly detail?: string
}

const DETAIL_MAX = 300

function clip(text: string): string {
  return text.length > DETAIL_MAX ? `${text.slice(0, DETAIL_MAX - 1)}…` : text
}

function eventDetail(event: Record<string, unknown>): string | undefined {
  const { type } = event
  if (type === 'RESTART_AFTER' && typeof event.delayMs === 'number') return `restart in ${event.delayMs} ms`
  for (const key of ['error', 'reason'] as const) {
    const v = event[key]
    if (typeof v === 'string' && v) return clip(v)
    if (v instanceof Error) return clip(v.message)
  }
  return undefined
}

function stateString(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object') return String(value)
  const [k, v] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', '']
  return v === undefined || (typeof v === 'object' && v !== null && Object.keys(v).length === 0) ? k : `${k}.${stateString(v)}`
}

/** Only what the page shows: collector health `details` can be large and change every second. */
function summarizeHealth(h: InspectorHealth): { status: string; collectors: Record<string, InspectorCollectorHealth> } {
  const collectors: Record<string, InspectorCollectorHealth> = {}
  for (const [name, c] of Object.entries(h.collectors)) {
    collectors[name] = {
      status: c.status,
      ...(c.message ? { message: c.message } : {}),
      ...(c.restartBudget ? { restartBudget: c.restartBudget } : {}),
    }
  }
  return { status: h.status, collectors }
}

/** After a transition the page gets a fresh snapshot within this time (bursts give one). */
const SNAPSHOT_AFTER_TRANSITION_MS = 50

let graphs: { collector: MachineGraph; supervisor: MachineGraph } | undefined
/** The shipped machines as data; they never change while the process runs. */
function machineGraphs(): { collector: MachineGraph; supervisor: MachineGraph } {
  graphs ??= { collector: machineGraph(collectorLifecycleMachine), supervisor: machineGraph(supervisorMachine) }
  return graphs
}

/**
 * The inspector page's live feed (Server-Sent Events), built from XState's inspection API:
 * `hello` (machine graphs, every actor's state, recent transitions), then `transition` for every
 * state change of any actor and `stats`: one snapshot of actors, health and rates read at one
 * instant (the page draws its header and cards from the same one), once a second and shortly
 * after transitions.
 * Every frame is serialised once for all clients; clients are bounded in number and in what each
 * can hold (`SseClients`): a tab that stops reading is dropped, never buffered without end.
 */
export class InspectorFeed {
  private readonly clients: SseClients
  private readonly last = new Map<string, string>()
  private readonly recent: TransitionRecord[] = []
  private seq = 0
  private readonly unsubscribe: () => void
  private readonly timer: ReturnType<typeof setInterval>
  private snapshotSoon: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly source: InspectorSource,
    private readonly allowControl: boolean,
    private readonly statsProvider?: () => unknown,
    limits?: SseLimits,
  ) {
    this.clients = new SseClients(limits)
    // A client that skipped stats while behind gets the current ones as soon as it catches up.
    this.clients.onDrain = (c) => c.send(this.frame('stats', this.stats()), 'latest')
    this.unsubscribe = source.manager.addInspector((e) => this.onInspection(e))
    this.timer = setInterval(() => {
      this.clients.sweep()
      this.broadcastStats()
    }, 1000)
    this.timer.unref()
  }

  private frame(event: string, data: unknown): string {
    const text = sseFrame(event, data)
    return this.source.redact ? this.source.redact(text) : text
  }

  private broadcastStats(): void {
    if (this.clients.size > 0) this.clients.broadcast(this.frame('stats', this.stats()), 'latest')
  }

  private stats(): unknown {
    const health = this.source.manager.health?.()
    return {
      time: new Date().toISOString(),
      rates: this.source.eventRates(),
      actors: this.source.manager.actors(),
      ...(health ? { health: summarizeHealth(health) } : {}),
      extra: this.statsProvider?.(),
    }
  }

  private onInspection(e: InspectionEvent): void {
    if (e.type !== '@xstate.snapshot') return
    const ref = e.actorRef as unknown as { id: string; sessionId: string }
    const value = (e.snapshot as { value?: unknown }).value
    if (value === undefined) return
    const actor = ref.id === 'supervisor' ? 'supervisor' : `collector:${ref.id}`
    const to = stateString(value)
    const key = `${actor}#${ref.sessionId}`
    const from = this.last.get(key) ?? null
    if (from === to) return
    this.last.set(key, to)
    const detail = eventDetail(e.event as Record<string, unknown>)
    const rec: TransitionRecord = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      actor,
      from,
      to,
      event: e.event.type,
      label: eventLabel(e.event.type),
      ...(detail ? { detail } : {}),
    }
    this.recent.push(rec)
    if (this.recent.length > 500) this.recent.shift()
    if (this.clients.size === 0) return
    this.clients.broadcast(this.frame('transition', rec), 'essential')
    this.snapshotSoon ??= setTimeout(() => {
      this.snapshotSoon = undefined
      this.broadcastStats()
    }, SNAPSHOT_AFTER_TRANSITION_MS)
  }

  /** Starts a client's stream (or answers 503 when the client cap is reached). */
  add(res: ServerResponse): void {
    // Browsers wait 3 s before reconnecting by default; an agent restart should show within a second.
    const client = this.clients.open(res, 'retry: 1000\n\n')
    client?.send(
      this.frame('hello', {
        machines: machineGraphs(),
        actors: this.source.manager.actors(),
        recent: this.recent,
        control: this.allowControl,
        ...(this.stats() as object),
      }),
      'essential',
    )
  }

  /** Clients now, accepted, turned away (cap) and dropped (slow or stuck). */
  counts(): SseCounts {
    return this.clients.counts()
  }

  close(): void {
    this.unsubscribe()
    clearInterval(this.timer)
    clearTimeout(this.snapshotSoon)
    this.clients.closeAll()
  }
}
