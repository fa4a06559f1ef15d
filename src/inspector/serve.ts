import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { requestGuard } from '../agent/http-guard.js'
import type { CollectorManager } from '../manager/collector-manager.js'
import { serveInspectorAsset } from './assets.js'
import type { TapioEvent } from '../events/event.js'
import { InspectorFeed } from './feed.js'
import { SampleFeed } from './sample-feed.js'
import type { SseCounts } from './sse-clients.js'

export interface InspectorOptions {
  /**
   * Show restart/stop buttons and accept `POST /api/collectors/<name>/restart|stop` (default
   * false). Only same-origin browser requests are accepted: a page elsewhere cannot press them.
   */
  readonly allowControl?: boolean
  /** Events per second per collector; measured from `statistics()` once a second when absent. */
  readonly eventRates?: () => Readonly<Record<string, number>>
  /**
   * Masks secrets in everything the feeds send (errors in contexts and transitions, event
   * previews can quote URLs with passwords). Identity when absent.
   */
  readonly redact?: (text: string) => string
  /** Told about every control action before it runs (logging). */
  readonly onControl?: (action: 'restart' | 'stop', collector: string) => void
}

/** The inspector's routes for one manager, to mount in any Node HTTP server. */
export interface Inspector {
  /**
   * Serves `GET /inspect` (the page), `/inspect/<asset>`, `/api/inspect/stream` (its live feed)
   * and, with `allowControl`, the control POSTs. Resolves false for any other request, which
   * stays untouched for the host's own routes.
   */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>
  /**
   * Hand the inspector the batches you consume (after you have them; it never waits and keeps
   * only references to a few) so a card can show a live sample of its collector's events.
   */
  observe(batch: readonly TapioEvent[]): void
  /** The feed's clients: connected, accepted, turned away at the cap, dropped (slow or stuck). */
  feedCounts(): SseCounts
  /** The same for the event-sample streams. */
  sampleCounts(): SseCounts
  /** Ends every open feed and stops observing the manager. */
  close(): void
}

/** The part of a CollectorManager the inspector uses. */
export type InspectedManager = Pick<CollectorManager, 'addInspector' | 'actors' | 'health' | 'statistics' | 'collectorNames' | 'restartCollector' | 'stopCollector'>

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(`${JSON.stringify(body)}\n`)
}

/** Accepted per second per collector, sampled once a second (what the agent does for /api/status). */
function rateSampler(manager: InspectedManager): { rates: () => Readonly<Record<string, number>>; stop: () => void } {
  let last = new Map<string, number>()
  let rates: Record<string, number> = {}
  const timer = setInterval(() => {
    const next: Record<string, number> = {}
    const seen = new Map<string, number>()
    for (const [name, c] of Object.entries(manager.statistics().collectors)) {
      next[name] = Math.max(0, c.accepted - (last.get(name) ?? c.accepted))
      seen.set(name, c.accepted)
    }
    last = seen
    rates = next
  }, 1000)
  timer.unref()
  return { rates: () => rates, stop: () => clearInterval(timer) }
}

/** A browser sends Origin with every POST; when it does, it must be this server's own origin. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin
  return origin === undefined || origin === `http://${req.headers.host ?? ''}`
}

const CONTROL = /^\/api\/collectors\/([^/]+)\/(restart|stop)$/

/**
 * The live inspector (supervisor and collector state machines, transitions, rates, restarts) for
 * an embedded CollectorManager; the agent serves its own page through this same function.
 *
 *   const inspector = createInspector(mgr)
 *   http.createServer(async (req, res) => { if (!(await inspector.handle(req, res))) myRoutes(req, res) })
 */
export function createInspector(manager: InspectedManager, options: InspectorOptions = {}): Inspector {
  const allowControl = options.allowControl ?? false
  const sampler = options.eventRates ? undefined : rateSampler(manager)
  const eventRates = options.eventRates ?? (sampler as NonNullable<typeof sampler>).rates
  const feed = new InspectorFeed({ manager, eventRates, ...(options.redact ? { redact: options.redact } : {}) }, allowControl)
  const samples = new SampleFeed(options.redact)
  return {
    async handle(req, res) {
      const method = req.method ?? 'GET'
      const url = new URL(req.url ?? '/', 'http://inspector')
      const path = url.pathname
      if (method === 'GET' && path === '/api/inspect/stream') {
        feed.add(res)
        return true
      }
      if (method === 'GET' && path === '/api/inspect/sample') {
        const collector = url.searchParams.get('collector') ?? ''
        if (!manager.collectorNames().includes(collector)) json(res, 404, { error: `no collector named ${JSON.stringify(collector)}` })
        else samples.add(res, collector)
        return true
      }
      if (method === 'GET' && (path === '/inspect' || path.startsWith('/inspect/'))) return serveInspectorAsset(path, res)
      const control = CONTROL.exec(path)
      if (!control || method !== 'POST') return false
      if (!allowControl) {
        json(res, 403, { error: 'control is disabled (allowControl: false)' })
        return true
      }
      if (!sameOrigin(req)) {
        json(res, 403, { error: `cross-origin control refused (Origin ${req.headers.origin ?? ''})` })
        return true
      }
      const name = decodeURIComponent(control[1] as string)
      const action = control[2] as 'restart' | 'stop'
      if (!manager.collectorNames().includes(name)) {
        json(res, 404, { error: `no collector named ${name}` })
        return true
      }
      options.onControl?.(action, name)
      const error = await (action === 'restart' ? manager.restartCollector(name) : manager.stopCollector(name)).then(
        () => undefined,
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      )
      json(res, error ? 409 : 200, error ? { error } : { ok: true })
      return true
    },
    observe: (batch) => samples.observe(batch),
    feedCounts: () => feed.counts(),
    sampleCounts: () => samples.counts(),
    close() {
      sampler?.stop()
      feed.close()
      samples.close()
    },
  }
}

export interface ServeInspectorOptions extends InspectorOptions {
  /** Default 127.0.0.1: the page shows every collector's state and errors. */
  readonly host?: string
  /** Default 0 (any free port; read it from `url`). */
  readonly port?: number
}

export interface InspectorServer {
  /** `http://host:port`; the page is at `${url}/inspect`. */
  readonly url: string
  /** See {@link Inspector.observe}: the batches you consume, for the cards' live event samples. */
  observe(batch: readonly TapioEvent[]): void
  close(): Promise<void>
}

/**
 * A small HTTP server with nothing but the inspector, for a process that has none of its own. It
 * has the agent's request checks: a `Host` that is not an IP literal, `localhost` or `host` is
 * refused (DNS rebinding), and so is a browser request from another origin.
 */
export async function serveInspector(manager: InspectedManager, options: ServeInspectorOptions = {}): Promise<InspectorServer> {
  const inspector = createInspector(manager, options)
  const host = options.host ?? '127.0.0.1'
  const guard = requestGuard({ host })
  const server = createServer((req, res) => {
    const refused = guard(req)
    if (refused) return json(res, refused.status, { error: refused.error })
    inspector.handle(req, res).then(
      (handled) => {
        if (handled) return
        if ((req.url ?? '/') === '/') {
          res.writeHead(302, { location: '/inspect' })
          res.end()
        } else json(res, 404, { error: `no route for ${req.method ?? 'GET'} ${req.url ?? '/'}` })
      },
      (e: unknown) => {
        if (!res.headersSent) json(res, 500, { error: e instanceof Error ? e.message : String(e) })
        else res.end()
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const a = server.address() as AddressInfo
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  return {
    url,
    observe: (batch) => inspector.observe(batch),
    async close() {
      inspector.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
