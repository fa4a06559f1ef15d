import { Backoff, type BackoffPolicy } from '../core/backoff.js'
import { delay } from '../core/delay.js'
import { type EventFormat, formatEvent } from './event-format.js'

/**
 * The commands that talk to a running agent over HTTP: `status` (once or `--watch`) and `tail`.
 * Both survive the agent going away: they say so on stderr and reconnect with backoff.
 */

export interface Terminal {
  /** Returns false when the line could not be written (the reader went away). */
  out(text: string): void
  err(text: string): void
  readonly isTTY: boolean
}

export interface RemoteOptions {
  readonly url: string
  readonly token?: string
  /** Ends the command (Ctrl-C, a closed stdout). */
  readonly signal: AbortSignal
  readonly term: Terminal
  readonly backoff?: BackoffPolicy
}

export const RECONNECT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 10_000, factor: 2, jitter: 0.2 })

/** A request that could not be made or answered with an error status; `retry` tells whether trying again may help. */
class RemoteError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message)
  }
}

function causeOf(e: unknown): string {
  if (e instanceof Error && e.cause instanceof Error) return e.cause.message
  return e instanceof Error ? e.message : String(e)
}

function headers(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {}
}

async function request(url: string, opts: RemoteOptions): Promise<Response> {
  let res: Response
  try {
    res = await fetch(url, { headers: headers(opts.token), signal: opts.signal })
  } catch (e) {
    throw new RemoteError(`cannot reach ${url}: ${causeOf(e)}`, true)
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => '')).trim()
    // 4xx (bad filter, wrong token) will not get better by asking again; 5xx might.
    throw new RemoteError(`${url}: HTTP ${res.status}${body ? ` ${body}` : ''}`, res.status >= 500)
  }
  return res
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

// ---- status -------------------------------------------------------------------------------

interface StatusCollector {
  state: string
  status: string
  eventsPerSec: number
  accepted: number
  delivered: number
  dropped: number
  restarts: number
  lastError: string | null
  message?: string | null
}

export interface StatusBody {
  status: string
  ready?: boolean
  readiness?: { failing: { name: string; reason: string | null; required: boolean }[] }
  buffer: { size: number; capacity: number; policy: string }
  totals: { accepted: number; delivered: number; dropped: { total: number }; restarts: number }
  collectors: Record<string, StatusCollector>
  skipped: { name: string; outcome: string; reason?: string }[]
  outputs?: Record<string, { ready: boolean; lastError: string | null; written: number; details?: { pendingEvents?: number } }>
}

export async function fetchStatus(opts: RemoteOptions): Promise<StatusBody> {
  const res = await request(`${opts.url}/api/status`, opts)
  return (await res.json()) as StatusBody
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n')
}

/** The human view of /api/status. */
export function renderStatus(s: StatusBody): string {
  const rows = [['COLLECTOR', 'STATE', 'STATUS', 'EVENTS/S', 'ACCEPTED', 'DELIVERED', 'DROPPED', 'RESTARTS', 'REASON / LAST ERROR']]
  for (const [name, c] of Object.entries(s.collectors)) {
    // The collector's own health message says why it is degraded while running; lastError why it failed.
    const reason = c.status !== 'ok' && c.message ? c.message : (c.lastError ?? '')
    rows.push([name, c.state, c.status, String(c.eventsPerSec), String(c.accepted), String(c.delivered), String(c.dropped), String(c.restarts), reason])
  }
  for (const k of s.skipped) rows.push([k.name, k.outcome, '-', '-', '-', '-', '-', '-', k.reason ?? ''])
  const outputs = Object.entries(s.outputs ?? {})
    .map(([name, o]) => `output ${name}: ${o.ready ? 'ready' : 'NOT READY'}   written: ${o.written}   pending: ${o.details?.pendingEvents ?? 0}${o.lastError && !o.ready ? `   last error: ${o.lastError}` : ''}\n`)
    .join('')
  const ready = s.ready === undefined ? '' : `   ready: ${s.ready ? 'yes' : 'NO'}`
  const header = `status: ${s.status}${ready}   buffer: ${s.buffer.size}/${s.buffer.capacity} (${s.buffer.policy})   accepted: ${s.totals.accepted}   delivered: ${s.totals.delivered}   dropped: ${s.totals.dropped.total}   restarts: ${s.totals.restarts}`
  return `${header}\n${outputs}${table(rows)}\n`
}

export interface StatusOptions extends RemoteOptions {
  readonly json: boolean
  /** Repaint every `intervalMs` until interrupted. */
  readonly watch: boolean
  readonly intervalMs: number
}

/** Exit code: 0, or 1 when the agent cannot be asked (once; `--watch` keeps trying). */
export async function statusCommand(opts: StatusOptions): Promise<number> {
  const render = (s: StatusBody) => (opts.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s))
  if (!opts.watch) {
    try {
      opts.term.out(render(await fetchStatus(opts)))
      return 0
    } catch (e) {
      if (opts.signal.aborted) return 0
      opts.term.err(`tapio-agent status: ${(e as Error).message}\n`)
      return 1
    }
  }
  const backoff = new Backoff(opts.backoff ?? RECONNECT_BACKOFF)
  let lost = false
  while (!opts.signal.aborted) {
    let wait = opts.intervalMs
    try {
      const s = await fetchStatus(opts)
      if (lost) opts.term.err(`status: ${opts.url} answers again\n`)
      lost = false
      backoff.succeed()
      // On a terminal, repaint in place; into a file or pipe, one snapshot after another.
      const clear = opts.term.isTTY && !opts.json ? '\x1b[H\x1b[2J' : ''
      opts.term.out(`${clear}${opts.json ? '' : `${new Date().toISOString()}  (every ${seconds(opts.intervalMs)}, Ctrl-C to stop)\n`}${render(s)}${clear || opts.json ? '' : '\n'}`)
    } catch (e) {
      if (opts.signal.aborted) break
      if (e instanceof RemoteError && !e.retry) {
        opts.term.err(`tapio-agent status: ${e.message}\n`)
        return 1
      }
      wait = backoff.fail()
      lost = true
      opts.term.err(`status: ${(e as Error).message}; retrying in ${seconds(wait)} (attempt ${backoff.attempts})\n`)
    }
    await delay(wait, opts.signal)
  }
  return 0
}

// ---- tail ---------------------------------------------------------------------------------

export interface TailOptions extends RemoteOptions {
  readonly sources: readonly string[]
  readonly types: readonly string[]
  readonly severity?: string
  readonly format: EventFormat
  /** Stop after this many events (exit 0). */
  readonly limit?: number
}

/** Server-Sent Events frames from a response body, as `{ event, data }`. */
async function* frames(body: AsyncIterable<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true })
    let i = buf.indexOf('\n\n')
    while (i >= 0) {
      const frame = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const event = /^event: (.*)$/m.exec(frame)?.[1] ?? 'message'
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n')
      yield { event, data }
      i = buf.indexOf('\n\n')
    }
  }
}

/** Warn (once, before tailing) about `--source` names the agent does not run: they would match nothing. */
async function warnUnknownSources(opts: TailOptions): Promise<void> {
  if (opts.sources.length === 0) return
  let known: string[]
  try {
    const s = await fetchStatus(opts)
    known = Object.keys(s.collectors)
  } catch {
    return
  }
  for (const source of opts.sources) {
    if (!known.includes(source))
      opts.term.err(`tail: warning: the agent runs no collector named ${JSON.stringify(source)} (it runs: ${known.join(', ') || 'none'}); nothing will match it\n`)
  }
}

/**
 * Follow `/events`. Exit code: 0 (interrupted, `--limit` reached), 1 (the agent cannot be reached
 * at first, or refuses the request). Once connected, a lost connection is retried with backoff
 * and said on stderr; events published while disconnected are not replayed.
 */
export async function tailCommand(opts: TailOptions): Promise<number> {
  const q = new URLSearchParams()
  if (opts.sources.length) q.set('source', opts.sources.join(','))
  if (opts.types.length) q.set('type', opts.types.join(','))
  if (opts.severity) q.set('severity', opts.severity)
  const url = `${opts.url}/events${q.size ? `?${q}` : ''}`
  await warnUnknownSources(opts)
  const backoff = new Backoff(opts.backoff ?? RECONNECT_BACKOFF)
  let connected = false
  let printed = 0
  const done = new AbortController()
  const signal = AbortSignal.any([opts.signal, done.signal])
  while (!signal.aborted) {
    let why: string
    try {
      const res = await request(url, { ...opts, signal })
      if (connected) opts.term.err(`tail: reconnected to ${opts.url} (events published meanwhile are not replayed)\n`)
      connected = true
      backoff.succeed()
      for await (const f of frames(res.body as unknown as AsyncIterable<Uint8Array>)) {
        if (f.event === 'message' && f.data) {
          opts.term.out(`${formatEvent(opts.format, f.data)}\n`)
          printed += 1
          if (opts.limit !== undefined && printed >= opts.limit) {
            done.abort()
            return 0
          }
        } else if (f.event === 'dropped') opts.term.err(`tail: this client fell behind and lost events: ${f.data}\n`)
      }
      why = 'the agent closed the stream'
    } catch (e) {
      if (signal.aborted) return 0
      if (!connected || (e instanceof RemoteError && !e.retry)) {
        opts.term.err(`tapio-agent tail: ${(e as Error).message}\n`)
        return 1
      }
      why = e instanceof RemoteError ? e.message : causeOf(e)
    }
    if (signal.aborted) return 0
    const wait = backoff.fail()
    opts.term.err(`tail: connection to ${opts.url} lost (${why}); reconnecting in ${seconds(wait)} (attempt ${backoff.attempts})\n`)
    await delay(wait, signal)
  }
  return 0
}
