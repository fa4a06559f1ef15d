import type { ServerResponse } from 'node:http'
import type { Severity } from '../events/schema.js'
import { SEVERITIES } from '../events/schema.js'
import type { TapioEvent } from '../events/event.js'

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
  queue: TapioEvent[]
  writing: boolean
  dropped: number
}

/**
 * Live tail for `/events` (Server-Sent Events). Publishing never waits: each client has a
 * bounded queue, and a client that falls behind loses its own events (counted), not the stream's.
 */
export class TailHub {
  private readonly clients = new Set<Client>()
  private droppedTotal = 0
  constructor(private readonly queueLimit: number) {}

  get dropped(): number {
    return this.droppedTotal
  }

  get size(): number {
    return this.clients.size
  }

  add(res: ServerResponse, filter: TailFilter): void {
    const client: Client = { res, filter, queue: [], writing: false, dropped: 0 }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.write(': tapio live tail\n\n')
    this.clients.add(client)
    res.on('close', () => this.clients.delete(client))
  }

  publish(batch: readonly TapioEvent[]): void {
    if (this.clients.size === 0) return
    for (const c of this.clients) {
      for (const e of batch) {
        if (!matches(c.filter, e)) continue
        if (c.queue.length >= this.queueLimit) {
          c.dropped += 1
          this.droppedTotal += 1
        } else c.queue.push(e)
      }
      if (!c.writing && c.queue.length > 0) void this.flush(c)
    }
  }

  private async flush(c: Client): Promise<void> {
    c.writing = true
    try {
      while (c.queue.length > 0 && this.clients.has(c)) {
        const items = c.queue
        c.queue = []
        let chunk = ''
        if (c.dropped > 0) {
          chunk += `event: dropped\ndata: ${JSON.stringify({ dropped: c.dropped })}\n\n`
          c.dropped = 0
        }
        for (const e of items) chunk += `data: ${JSON.stringify(e)}\n\n`
        if (!c.res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              c.res.off('drain', done)
              c.res.off('close', done)
              resolve()
            }
            c.res.on('drain', done)
            c.res.on('close', done)
          })
        }
      }
    } finally {
      c.writing = false
    }
  }

  closeAll(): void {
    for (const c of this.clients) c.res.end()
    this.clients.clear()
  }
}
