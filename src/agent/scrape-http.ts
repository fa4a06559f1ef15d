import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { ReadinessReport } from './readiness.js'
import { capConnections, SERVER_TIMEOUTS, httpUrl, listenOn } from './http-limits.js'

/** The paths the scrape listener serves; everything else (control, /events, /inspect) is not there. */
export const SCRAPE_PATHS = ['/metrics', '/healthz', '/readyz'] as const

export interface ScrapeListenerOptions {
  readonly host: string
  readonly port: number
  readonly maxConnections: number
}

/**
 * A second listener for a cluster's Prometheus and kubelet: `/metrics`, `/healthz` and `/readyz`
 * only, without the token, on the pod IP. No Host/Origin checks: nothing here changes state or is
 * secret beyond what `/metrics` already is, and a scraper names the target by IP or Service name.
 * The main listener (control, live tail, inspector) keeps loopback or its token.
 */
export class ScrapeListener {
  private readonly server: Server
  private address: AddressInfo | undefined

  constructor(
    private readonly registry: Registry,
    private readonly readiness: () => ReadinessReport,
    private readonly options: ScrapeListenerOptions,
    /** The agent's redactor: the readiness report quotes collectors' last errors. */
    private readonly redact: (text: string) => string = (t) => t,
  ) {
    this.server = createServer(SERVER_TIMEOUTS, (req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('internal error\n')
      })
    })
    capConnections(this.server, options.maxConnections)
  }

  get url(): string {
    return httpUrl(this.address)
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.options.port, this.options.host)
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? ''
    const path = target.startsWith('/') && !target.startsWith('//') ? target.split('?')[0] : undefined
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : `${this.redact(JSON.stringify(body, null, 2))}\n`)
    }
    if (path === undefined) return json(400, { error: 'malformed request target (expected /path)' })
    if (!(SCRAPE_PATHS as readonly string[]).includes(path)) return json(404, { error: `not served on the scrape listener: ${path} (only ${SCRAPE_PATHS.join(', ')})` })
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return json(405, { error: `method ${req.method ?? ''} not allowed` })
    }
    if (path === '/healthz') return json(200, { status: 'alive' })
    if (path === '/readyz') {
      const r = this.readiness()
      // The same report as the main listener's /readyz.
      return json(r.ready ? 200 : 503, r)
    }
    const body = await this.registry.metrics()
    res.writeHead(200, { 'content-type': this.registry.contentType })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}
