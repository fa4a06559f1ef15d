import type { ServerResponse } from 'node:http'
import type { InspectionEvent } from 'xstate'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { supervisorMachine } from '../../machines/supervisor.js'
import { type MachineGraph, machineGraph } from './machine-graph.js'
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
}

export interface InspectorHealth {
  readonly status: string
  readonly collectors: Readonly<Record<string, { readonly status: string; readonly message?: string }>>
}

export interface TransitionRecord {
  readonly seq: number
  readonly time: string
  /** `supervisor` or `collector:<name>`. */
  readonly actor: string
  readonly from: string | null
  readonly to: string
  readonly event: string
}

function stateString(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object') return String(value)
  const [k, v] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', '']
  return v === undefined || (typeof v === 'object' && v !== null && Object.keys(v).length === 0) ? k : `${k}.${stateString(v)}`
}

/** Only what the page shows: collector health `details` can be large and change every second. */
function summarizeHealth(h: InspectorHealth): { status: string; collectors: Record<string, { status: string; message?: string }> } {
  const collectors: Record<string, { status: string; message?: string }> = {}
  for (const [name, c] of Object.entries(h.collectors)) collectors[name] = c.message ? { status: c.status, message: c.message } : { status: c.status }
  return { status: h.status, collectors }
}

let graphs: { collector: MachineGraph; supervisor: MachineGraph } | undefined
/** The shipped machines as data; they never change while the process runs. */
function machineGraphs(): { collector: MachineGraph; supervisor: MachineGraph } {
  graphs ??= { collector: machineGraph(collectorLifecycleMachine), supervisor: machineGraph(supervisorMachine) }
  return graphs
}

/**
 * The inspector page's live feed (Server-Sent Events), built from XState's inspection API:
 * `hello` (machine graphs, every actor's state, recent transitions), then `transition` for every
 * state change of any actor and `stats` once a second (rates, restarts, last errors).
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

  constructor(
    private readonly source: InspectorSource,
    private readonly allowControl: boolean,
    private readonly statsProvider?: () => unknown,
    limits?: SseLimits,
  ) {
    this.clients = new SseClients(limits)
    // A client that skipped stats while behind gets the current ones as soon as it catches up.
    this.clients.onDrain = (c) => c.send(sseFrame('stats', this.stats()), 'latest')
    this.unsubscribe = source.manager.addInspector((e) => this.onInspection(e))
    this.timer = setInterval(() => {
      this.clients.sweep()
      if (this.clients.size > 0) this.clients.broadcast(sseFrame('stats', this.stats()), 'latest')
    }, 1000)
    this.timer.unref()
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
    const rec: TransitionRecord = { seq: ++this.seq, time: new Date().toISOString(), actor, from, to, event: e.event.type }
    this.recent.push(rec)
    if (this.recent.length > 500) this.recent.shift()
    if (this.clients.size > 0) this.clients.broadcast(sseFrame('transition', rec), 'essential')
  }

  /** Starts a client's stream (or answers 503 when the client cap is reached). */
  add(res: ServerResponse): void {
    // Browsers wait 3 s before reconnecting by default; an agent restart should show within a second.
    const client = this.clients.open(res, 'retry: 1000\n\n')
    client?.send(
      sseFrame('hello', {
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
    this.clients.closeAll()
  }
}
