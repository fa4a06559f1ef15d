import type { ServerResponse } from 'node:http'
import type { Severity } from '../events/schema.js'
import { SEVERITIES } from '../events/schema.js'
import type { TapioEvent } from '../events/event.js'
import { type FramedLines, frameLines, NdjsonBatch } from '../outputs/ndjson.js'

export interface TailFilter {
  readonly sources?: ReadonlySet<string>
  /** Exact types or prefixes ending in `*` (e.g. `k8s.pod.*`). */
  readonly types?: readonly string[]
  readonly minSeverity?: Severity
}

export function parseTailFilter(params: URLSearchParams): TailFilter | string {
  const list = (k: string) =>
    params
      .getAll(k)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter(Boolean)
  const sev = params.get('severity') ?? undefined
  if (sev !== undefined && !SEVERITIES.includes(sev as Severity)) return `severity: expected one of ${SEVERITIES.join(', ')}, got ${JSON.stringify(sev)}`
  const sources = list('source')
  const types = list('type')
  return {
    ...(sources.length ? { sources: new Set(sources) } : {}),
    ...(types.length ? { types } : {}),
    ...(sev ? { minSeverity: sev as Severity } : {}),
  }
}

function matches(f: TailFilter, e: TapioEvent): boolean {
  if (f.sources && !f.sources.has(e.source)) return false
  if (f.minSeverity && SEVERITIES.indexOf(e.severity) < SEVERITIES.indexOf(f.minSeverity)) return false
  if (f.types && !f.types.some((t) => (t.endsWith('*') ? e.type.startsWith(t.slice(0, -1)) : e.type === t))) return false
  return true
}

interface Client {
  readonly res: ServerResponse
  readonly filter: TailFilter
  readonly all: boolean
  /** Events written to the response that the socket has not taken yet. */
  queued: number
  /** Lost since the last notice to this client. */
  dropped: number
}

const frames = (lines: readonly string[], pick?: readonly number[]): FramedLines => frameLines(lines, 'data: ', '\n\n', pick)

/** The answer when the global cap is reached. */
export const TAIL_FULL_STATUS = 503

/**
 * Live tail for `/events` (Server-Sent Events). Publishing never waits, and memory is bounded:
 * - per client, at most `queueLimit` events written but not yet taken by its socket; a client
 *   that falls behind loses its own events (counted, and told with an `event: dropped` frame),
 *   never the stream's;
 * - at most `maxClients` clients; the next one is answered 503 with the reason.
 * Every batch is serialised once (the shared `NdjsonBatch` lines) and its SSE frames are built
 * once for all unfiltered clients, who are handed the same bytes.
 */
export class TailHub {
  private readonly clients = new Set<Client>()
  private droppedTotal = 0
  private refusedTotal = 0

  constructor(
    private readonly queueLimit: number,
    readonly maxClients: number = Number.POSITIVE_INFINITY,
  ) {}

  get dropped(): number {
    return this.droppedTotal
  }

  /** Clients turned away because `maxClients` were connected. */
  get refused(): number {
    return this.refusedTotal
  }

  get size(): number {
    return this.clients.size
  }

  /** Starts the stream, or answers 503 (and returns false) when the cap is reached. */
  add(res: ServerResponse, filter: TailFilter): boolean {
    if (this.clients.size >= this.maxClients) {
      this.refusedTotal += 1
      const body = JSON.stringify({ error: `too many /events clients (limit ${this.maxClients}, http.maxTailClients); try again later` })
      res.writeHead(TAIL_FULL_STATUS, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5', 'cache-control': 'no-store' })
      res.end(`${body}\n`)
      return false
    }
    const all = filter.sources === undefined && filter.types === undefined && filter.minSeverity === undefined
    const client: Client = { res, filter, all, queued: 0, dropped: 0 }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.write(': tapio live tail\n\n')
    this.clients.add(client)
    res.on('close', () => this.clients.delete(client))
    return true
  }

  publish(batch: readonly TapioEvent[] | NdjsonBatch): void {
    if (this.clients.size === 0) return
    const b = NdjsonBatch.from(batch)
    if (b.length === 0) return
    let shared: FramedLines | undefined
    for (const c of this.clients) {
      const room = Math.max(0, this.queueLimit - c.queued)
      if (c.all) {
        const k = Math.min(room, b.length)
        this.lose(c, b.length - k)
        if (k === 0) continue
        shared ??= frames(b.lines)
        // A part of the shared frames is copied: a view would keep the whole batch alive.
        const bytes = k === b.length ? shared.bytes : Buffer.from(shared.bytes.subarray(0, shared.offsets[k]))
        this.send(c, bytes, k)
        continue
      }
      const pick: number[] = []
      for (let i = 0; i < b.length; i++) if (matches(c.filter, b.events[i] as TapioEvent)) pick.push(i)
      const k = Math.min(room, pick.length)
      this.lose(c, pick.length - k)
      if (k === 0) continue
      pick.length = k
      this.send(c, frames(b.lines, pick).bytes, k)
    }
  }

  private lose(c: Client, n: number): void {
    if (n <= 0) return
    c.dropped += n
    this.droppedTotal += n
  }

  private send(c: Client, bytes: Buffer, events: number): void {
    if (c.dropped > 0) {
      c.res.write(`event: dropped\ndata: ${JSON.stringify({ dropped: c.dropped })}\n\n`)
      c.dropped = 0
    }
    c.queued += events
    // The callback runs once the socket has taken the bytes (or the response is gone).
    c.res.write(bytes, () => {
      c.queued -= events
    })
  }

  closeAll(): void {
    for (const c of this.clients) c.res.end()
    this.clients.clear()
  }
}
