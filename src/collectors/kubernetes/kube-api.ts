import http from 'node:http'
import https from 'node:https'
import { KubeConfig, Watch } from '@kubernetes/client-node'
import { type Clock, systemClock } from '../../core/clock.js'
import type { KubernetesConfig } from './config.js'

/** An HTTP-level failure from the API server (or the connection to it). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError'
  constructor(
    message: string,
    /** HTTP status, or undefined for a connection failure. */
    readonly statusCode?: number,
  ) {
    super(message)
  }
}

/** Load the kubeconfig the collector config asks for (file + context, default rules, or in-cluster). */
export function loadKubeConfig(config: Pick<KubernetesConfig, 'kubeconfig' | 'context' | 'inCluster'>): KubeConfig {
  const kc = new KubeConfig()
  if (config.inCluster) kc.loadFromCluster()
  else if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig)
  else kc.loadFromDefault()
  if (config.context !== undefined) {
    if (!kc.getContextObject(config.context)) {
      const known = kc.getContexts().map((c) => c.name)
      throw new KubeApiError(`kubeconfig has no context "${config.context}" (known: ${known.join(', ') || 'none'})`)
    }
    kc.setCurrentContext(config.context)
  }
  if (!kc.getCurrentCluster()) throw new KubeApiError('kubeconfig selects no cluster (no current-context?)')
  return kc
}

function buildUrl(kc: KubeConfig, path: string, query: Readonly<Record<string, string | undefined>>): URL {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new KubeApiError('kubeconfig selects no cluster')
  const url = new URL(cluster.server.replace(/\/$/, '') + path)
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, v)
  return url
}

function statusMessage(body: string, statusCode: number): string {
  try {
    const parsed: unknown = JSON.parse(body)
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'string') {
      return `HTTP ${statusCode}: ${parsed.message}`
    }
  } catch {
    // not a Status object: fall back to the status line
  }
  return `HTTP ${statusCode} ${http.STATUS_CODES[statusCode] ?? ''}`.trim()
}

/**
 * GET a collection (one page) as parsed JSON. Goes through the client's KubeConfig for
 * credentials and TLS, but reads the raw JSON itself so every item can be checked with a
 * schema (the generated API clients transform objects before we would see them). The request
 * is abandoned when nothing arrives for `idleMs` (on `clock`) or `signal` aborts.
 */
export async function getJson(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  idleMs: number,
  signal: AbortSignal,
  clock: Clock = systemClock,
): Promise<unknown> {
  const url = buildUrl(kc, path, query)
  const opts: https.RequestOptions = {}
  await kc.applyToHTTPSOptions(opts)
  const agent = opts.agent
  const mod = url.protocol === 'http:' ? http : https
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const req = mod.request(url, {
        method: 'GET',
        agent,
        headers: { ...opts.headers, Accept: 'application/json' },
        ...(opts.auth !== undefined ? { auth: opts.auth } : {}),
      })
      const fail = (err: Error) => {
        cleanup()
        req.destroy()
        reject(err)
      }
      let idle = clock.setTimeout(() => fail(new KubeApiError(`no data from the API server for ${idleMs} ms`)), idleMs)
      const bump = () => {
        clock.clearTimeout(idle)
        idle = clock.setTimeout(() => fail(new KubeApiError(`no data from the API server for ${idleMs} ms`)), idleMs)
      }
      const onAbort = () => fail(new KubeApiError('aborted'))
      const cleanup = () => {
        clock.clearTimeout(idle)
        signal.removeEventListener('abort', onAbort)
      }
      // Listening first: destroying a request without an error listener throws in the process.
      req.on('error', (err) => fail(new KubeApiError(`request failed: ${err.message}`)))
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      req.on('response', (res) => {
        bump()
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => {
          bump()
          chunks.push(c)
        })
        res.on('error', (err) => fail(new KubeApiError(`response failed: ${err.message}`)))
        res.on('end', () => {
          cleanup()
          const body = Buffer.concat(chunks).toString('utf8')
          const code = res.statusCode ?? 0
          if (code !== 200) return reject(new KubeApiError(statusMessage(body, code), code))
          try {
            resolve(JSON.parse(body))
          } catch {
            reject(new KubeApiError('list response is not JSON', code))
          }
        })
      })
      req.end()
    })
  } finally {
    if (agent instanceof http.Agent) agent.destroy()
  }
}

export type WatchOutcome =
  | { readonly kind: 'closed' }
  | { readonly kind: 'error'; readonly error: KubeApiError }
  | { readonly kind: 'cancelled' }

export interface WatchHandle {
  /** Settles once, when the stream ends for any reason. */
  readonly done: Promise<WatchOutcome>
  /** True once the server answered 200 and the stream is open. */
  readonly connected: () => boolean
  /** End the watch; `done` settles with `cancelled` unless it already settled. */
  cancel(): void
}

/**
 * Open one watch with the client's `Watch`. It adds what the client lacks: cancellation before
 * the response headers arrive (the client only hands out its AbortController afterwards, so a
 * server that never answers would hang it forever) by destroying the request's own agent, and a
 * single settled outcome however many of the client's close/error paths fire.
 */
export function openWatch(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | number | boolean | undefined>>,
  onEvent: (type: unknown, object: unknown) => void,
): WatchHandle {
  let agent: http.Agent | undefined
  let controller: AbortController | undefined
  let cancelled = false
  let settled = false
  let isConnected = false
  let settle!: (o: WatchOutcome) => void
  const done = new Promise<WatchOutcome>((resolve) => {
    settle = (o) => {
      if (settled) return
      settled = true
      isConnected = false
      resolve(o)
    }
  })
  // The client only needs these two methods; wrapping them lets us own the agent of this request.
  const view = {
    getCurrentCluster: () => kc.getCurrentCluster(),
    applyToFetchOptions: async (opts: https.RequestOptions) => {
      const init = await kc.applyToFetchOptions(opts)
      if (init.agent instanceof http.Agent) agent = init.agent
      if (cancelled) throw new KubeApiError('cancelled')
      return init
    },
  }
  const watch = new Watch(view as unknown as KubeConfig)
  const release = () => agent?.destroy()
  watch
    .watch(
      path,
      query,
      (type, object) => {
        if (settled) return
        // The client swallows exceptions thrown here as "parse errors"; never let one escape.
        try {
          onEvent(type, object)
        } catch {
          // onEvent counts its own failures
        }
      },
      (err: unknown) => {
        release()
        if (cancelled) return settle({ kind: 'cancelled' })
        if (err === null || err === undefined) return settle({ kind: 'closed' })
        settle({ kind: 'error', error: toApiError(err) })
      },
    )
    .then(
      (c) => {
        controller = c
        if (cancelled) c.abort()
        else if (!settled) isConnected = true
      },
      (err: unknown) => {
        release()
        settle(cancelled ? { kind: 'cancelled' } : { kind: 'error', error: toApiError(err) })
      },
    )
  return {
    done,
    connected: () => isConnected,
    cancel() {
      if (settled || cancelled) return
      cancelled = true
      if (controller) controller.abort()
      else release()
      // If the request has not reached the agent yet, applyToFetchOptions above refuses it.
      settle({ kind: 'cancelled' })
    },
  }
}

function toApiError(err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err
  if (err instanceof Error) {
    const code = (err as Error & { statusCode?: unknown }).statusCode
    if (typeof code === 'number') return new KubeApiError(`HTTP ${code} ${err.message}`, code)
    return new KubeApiError(`watch failed: ${err.message}`)
  }
  return new KubeApiError(`watch failed: ${String(err)}`)
}
