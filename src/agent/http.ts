import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { InspectorFeed } from '../inspector/feed.js'
import { serveInspectorAsset } from '../inspector/assets.js'
import type { Agent } from './agent.js'
import type { AgentConfig } from './config.js'
import type { Logger } from './logger.js'
import { parseTailFilter } from './tail.js'

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(`${text}\n`)
}

function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

const COOKIE = 'tapio_token'

/**
 * A bearer header (API clients, probes) or the cookie set by `/inspect?token=...`: a browser's
 * EventSource cannot send an Authorization header, so the inspector page authenticates by cookie.
 */
function authorized(req: IncomingMessage, token: string): boolean {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')
  if (bearer && sameSecret(bearer[1] as string, token)) return true
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=')
    if (k === COOKIE && v !== undefined && sameSecret(decodeURIComponent(v), token)) return true
  }
  return false
}

/**
 * The agent's HTTP face: probes, Prometheus metrics, live tail, the inspector page and its feed,
 * and (when allowed) control of collectors. Loopback by default; another address needs a token.
 */
export class AgentHttpServer {
  private readonly server: Server
  private readonly feed: InspectorFeed
  private address: AddressInfo | undefined

  constructor(
    private readonly agent: Agent,
    private readonly registry: Registry,
    private readonly config: AgentConfig['http'],
    private readonly log: Logger,
  ) {
    this.feed = new InspectorFeed(agent, config.allowControl)
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        log.error('http handler failed', { url: req.url, error: e instanceof Error ? e.message : String(e) })
        if (!res.headersSent) json(res, 500, { error: 'internal error' })
        else res.end()
      })
    })
  }

  get url(): string {
    const a = this.address
    if (!a) return ''
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `http://${host}:${a.port}`
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.address = this.server.address() as AddressInfo
  }

  async close(): Promise<void> {
    this.feed.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent')
    const path = url.pathname
    // Liveness stays open and green while collectors are down: never restart-loop the node agent.
    if (path === '/healthz') return json(res, 200, { status: 'alive' })
    const token = this.config.token
    if (token && path === '/inspect' && url.searchParams.has('token')) {
      if (!sameSecret(url.searchParams.get('token') ?? '', token)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer' })
        res.end('unauthorized\n')
        return
      }
      res.writeHead(303, {
        location: '/inspect',
        'set-cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
      })
      res.end()
      return
    }
    if (token && !authorized(req, token)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' })
      res.end('unauthorized\n')
      return
    }
    const method = req.method ?? 'GET'
    if (method === 'GET') {
      switch (path) {
        case '/readyz':
          return this.readyz(res)
        case '/metrics': {
          const body = await this.registry.metrics()
          res.writeHead(200, { 'content-type': this.registry.contentType })
          res.end(body)
          return
        }
        case '/events': {
          const filter = parseTailFilter(url.searchParams)
          if (typeof filter === 'string') return json(res, 400, { error: filter })
          this.agent.tail.add(res, filter)
          return
        }
        case '/api/status':
          return json(res, 200, this.status())
        case '/api/actors':
          return json(res, 200, this.agent.manager.actors())
        case '/api/inspect/stream':
          this.feed.add(res)
          return
        case '/':
          res.writeHead(302, { location: '/inspect' })
          res.end()
          return
      }
      if (path === '/inspect' || path.startsWith('/inspect/')) {
        if (serveInspectorAsset(path, res)) return
      }
    }
    const control = /^\/api\/collectors\/([^/]+)\/(restart|stop)$/.exec(path)
    if (control && method === 'POST') {
      if (!this.config.allowControl) return json(res, 403, { error: 'control is disabled (http.allowControl: false)' })
      const name = decodeURIComponent(control[1] as string)
      const action = control[2] as 'restart' | 'stop'
      if (!this.agent.manager.collectorNames().includes(name)) return json(res, 404, { error: `no collector named ${name}` })
      this.log.info(`control: ${action} ${name}`, { collector: name, action })
      if (action === 'restart') {
        const err = await this.agent.manager.restartCollector(name).then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        )
        return json(res, err ? 409 : 200, err ? { error: err } : { ok: true })
      }
      await this.agent.manager.stopCollector(name)
      return json(res, 200, { ok: true })
    }
    json(res, 404, { error: `no route for ${method} ${path}` })
  }

  private readyz(res: ServerResponse): void {
    const h = this.agent.manager.health()
    const failing = Object.entries(h.collectors)
      .filter(([, c]) => c.status !== 'ok')
      .map(([name, c]) => ({ name, status: c.status, state: c.state, lastError: c.lastError }))
    const outputs = this.agent.outputsHealth().filter((o) => !o.health.ready)
    for (const o of outputs) failing.push({ name: `output:${o.name}`, status: 'recoverable_error', state: 'unavailable', lastError: o.health.lastError })
    const ok = h.status === 'ok' && outputs.length === 0
    json(res, ok ? 200 : 503, { status: ok ? h.status : h.status === 'ok' ? 'recoverable_error' : h.status, failing })
  }

  status(): unknown {
    const stats = this.agent.manager.statistics()
    const health = this.agent.manager.health()
    const rates = this.agent.eventRates()
    return {
      status: health.status,
      supervisor: health.supervisor,
      buffer: stats.buffer,
      totals: {
        accepted: stats.totalEvents,
        delivered: stats.deliveredEvents,
        dropped: stats.droppedEvents,
        restarts: stats.restarts,
        tailDropped: this.agent.tail.dropped,
      },
      streams: { inspect: this.feed.counts() },
      collectors: Object.fromEntries(
        Object.entries(stats.collectors).map(([name, c]) => [
          name,
          {
            state: health.collectors[name]?.state ?? c.state,
            status: c.status,
            eventsPerSec: rates[name] ?? 0,
            accepted: c.accepted,
            delivered: c.delivered,
            dropped: c.droppedTotal,
            restarts: c.restarts,
            lastError: health.collectors[name]?.lastError ?? null,
            ...(c.custom ? { custom: c.custom } : {}),
          },
        ]),
      ),
      outputs: Object.fromEntries(this.agent.outputsHealth().map((o) => [o.name, { ready: o.health.ready, lastError: o.health.lastError, written: o.written, details: o.health.details }])),
      skipped: [...this.agent.dispositions.values()].filter((d) => d.outcome === 'skipped' || d.outcome === 'disabled'),
    }
  }
}
