import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { TapioEvent } from '../events/event.js'
import { createInspector, type InspectedManager, type Inspector } from '../inspector/serve.js'
import type { Agent } from './agent.js'
import type { AgentConfig } from './config.js'
import { bearerOk, type Refusal, requestGuard, sameSecret, TOKEN_COOKIE, tokenCookie } from './http-guard.js'
import { capConnections, SERVER_TIMEOUTS, httpUrl, listenOn } from './http-limits.js'
import type { Logger } from './logger.js'
import type { Redactor } from './redact.js'
import { parseTailFilter } from './tail.js'

function json(res: ServerResponse, status: number, body: unknown, redact: (text: string) => string = (t) => t): void {
  const text = redact(JSON.stringify(body, null, 2))
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(`${text}\n`)
}

/** The manager as the inspector feed sees it: states and health with secrets masked. */
function redactingManager(m: InspectedManager, r: Redactor): InspectedManager {
  return {
    addInspector: (fn) => m.addInspector(fn),
    actors: () => r.redactValue(m.actors()),
    health: () => r.redactValue(m.health()),
    statistics: () => m.statistics(),
    collectorNames: () => m.collectorNames(),
    restartCollector: (name) => m.restartCollector(name),
    stopCollector: (name) => m.stopCollector(name),
  }
}

/** A bearer header (API clients, probes) or the cookie set by `/inspect?token=...`: a browser's
 * EventSource cannot send an Authorization header, so the inspector page authenticates by cookie. */
function authorized(req: IncomingMessage, token: string): boolean | Refusal {
  if (bearerOk(req, token)) return true
  const cookie = tokenCookie(req)
  if (cookie === undefined) return false
  return typeof cookie === 'string' ? sameSecret(cookie, token) : cookie
}

function refuse(res: ServerResponse, r: Refusal): void {
  if (r.status === 401) {
    res.writeHead(401, { 'www-authenticate': 'Bearer' })
    res.end('unauthorized\n')
    return
  }
  json(res, r.status, { error: r.error })
}

/**
 * The agent's HTTP face: probes, Prometheus metrics, live tail, the inspector page and its feed,
 * and (when allowed) control of collectors. Loopback by default; another address needs a token.
 */
export class AgentHttpServer {
  private readonly server: Server
  private readonly inspector: Inspector
  private address: AddressInfo | undefined
  private readonly limits: ReturnType<typeof capConnections>
  /** Every JSON body passes the agent's redactor (a NATS URL's password in a last error, ...). */
  private readonly json = (res: ServerResponse, status: number, body: unknown) => json(res, status, body, this.agent.redactor.redact)

  constructor(
    private readonly agent: Agent,
    private readonly registry: Registry,
    private readonly config: AgentConfig['http'],
    private readonly log: Logger,
  ) {
    // The same inspector an embedding program mounts; control stays with the agent's routes below.
    this.inspector = createInspector(redactingManager(agent.manager, agent.redactor), {
      allowControl: config.allowControl,
      eventRates: () => agent.eventRates(),
      redact: agent.redactor.redact,
    })
    const guard = requestGuard(config)
    this.server = createServer(SERVER_TIMEOUTS, (req, res) => {
      // Before any handler: every endpoint, mounted here or later, sits behind the same checks.
      const refused = guard(req)
      if (refused) return refuse(res, refused)
      this.handle(req, res).catch((e: unknown) => {
        log.error('http handler failed', { url: req.url, error: e instanceof Error ? e.message : String(e) })
        if (!res.headersSent) this.json(res, 500, { error: 'internal error' })
        else res.end()
      })
    })
    this.limits = capConnections(this.server, config.maxConnections)
  }

  get connections(): { readonly open: number; readonly evicted: number } {
    return { open: this.limits.open(), evicted: this.limits.evicted() }
  }

  get url(): string {
    return httpUrl(this.address)
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.config.port, this.config.host)
  }

  /**
   * Batches the agent consumed, for the inspector's live event samples (never waits). Read only
   * while a sample stream is open: a kernel batch then stays bytes, never made into objects.
   */
  observe(batch: { readonly events: readonly TapioEvent[] }): void {
    if (this.inspector.sampleCounts().clients > 0) this.inspector.observe(batch.events)
  }

  async close(): Promise<void> {
    this.inspector.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://agent')
    } catch {
      return this.json(res, 400, { error: 'malformed request target' })
    }
    const path = url.pathname
    // Liveness stays open and green while collectors are down: never restart-loop the node agent.
    if (path === '/healthz') return this.json(res, 200, { status: 'alive' })
    const token = this.config.token
    if (token && path === '/inspect' && url.searchParams.has('token')) {
      if (!sameSecret(url.searchParams.get('token') ?? '', token)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer' })
        res.end('unauthorized\n')
        return
      }
      res.writeHead(303, {
        location: '/inspect',
        'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
      })
      res.end()
      return
    }
    if (token) {
      const ok = authorized(req, token)
      if (ok !== true) return refuse(res, ok === false ? { status: 401, error: 'unauthorized' } : ok)
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
          if (typeof filter === 'string') return this.json(res, 400, { error: filter })
          this.agent.tail.add(res, filter)
          return
        }
        case '/api/status':
          return this.json(res, 200, this.status())
        case '/api/actors':
          return this.json(res, 200, this.agent.manager.actors())
        case '/':
          res.writeHead(302, { location: '/inspect' })
          res.end()
          return
      }
      if (await this.inspector.handle(req, res)) return
    }
    const control = /^\/api\/collectors\/([^/]+)\/(restart|stop)$/.exec(path)
    if (control && method === 'POST') {
      if (!this.config.allowControl) return this.json(res, 403, { error: 'control is disabled (http.allowControl: false)' })
      let name: string
      try {
        name = decodeURIComponent(control[1] as string)
      } catch {
        return this.json(res, 400, { error: 'malformed percent-encoding in the collector name' })
      }
      const action = control[2] as 'restart' | 'stop'
      if (!this.agent.manager.collectorNames().includes(name)) return this.json(res, 404, { error: `no collector named ${name}` })
      this.log.info(`control: ${action} ${name}`, { collector: name, action })
      if (action === 'restart') {
        const err = await this.agent.manager.restartCollector(name).then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        )
        return this.json(res, err ? 409 : 200, err ? { error: err } : { ok: true })
      }
      await this.agent.manager.stopCollector(name)
      return this.json(res, 200, { ok: true })
    }
    this.json(res, 404, { error: `no route for ${method} ${path}` })
  }

  private readyz(res: ServerResponse): void {
    const r = this.agent.readiness()
    this.json(res, r.ready ? 200 : 503, r)
  }

  status(): unknown {
    const stats = this.agent.manager.statistics()
    const health = this.agent.manager.health()
    const rates = this.agent.eventRates()
    const readiness = this.agent.readiness()
    return {
      status: health.status,
      ready: readiness.ready,
      readiness: { require: readiness.require, failing: readiness.failing, grace: readiness.grace, ignored: readiness.ignored },
      reload: this.agent.reloadStatus,
      supervisor: health.supervisor,
      buffer: stats.buffer,
      totals: {
        accepted: stats.totalEvents,
        delivered: stats.deliveredEvents,
        dropped: stats.droppedEvents,
        restarts: stats.restarts,
        tailDropped: this.agent.tail.dropped,
        tailRefused: this.agent.tail.refused,
      },
      streams: { inspect: this.inspector.feedCounts(), inspectSample: this.inspector.sampleCounts() },
      processors: this.agent.processorStatistics(),
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
            message: health.collectors[name]?.message ?? null,
            ...(c.source ? { source: c.source } : {}),
          },
        ]),
      ),
      outputs: Object.fromEntries(this.agent.outputsHealth().map((o) => [o.name, { ready: o.health.ready, lastError: o.health.lastError, written: o.written, details: o.health.details }])),
      skipped: [...this.agent.dispositions.values()].filter((d) => d.outcome === 'skipped' || d.outcome === 'disabled'),
    }
  }
}
