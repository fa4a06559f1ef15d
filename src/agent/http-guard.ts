import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

/**
 * Who may talk to the agent over HTTP, decided before any handler runs.
 *
 * - DNS rebinding: a page on `evil.example` whose name is made to resolve to 127.0.0.1 reaches the
 *   agent as same-origin for the browser, but its requests carry `Host: evil.example`. So the
 *   `Host` must name the agent: an IP literal (an IP origin cannot be rebound), `localhost`, or the
 *   configured `http.host`. That holds for every method, reads included.
 * - Cross-site control: a browser sends `Origin` with every cross-origin request and with every
 *   POST; a simple (`text/plain`) POST needs no preflight. So an `Origin`, when present, must be
 *   this very origin (`http://` + the `Host` header).
 * - A state-changing request (POST...) needs that same-origin `Origin` or the token. Browsers
 *   always send `Origin` on a POST, so a request without one comes from another program on the
 *   node (e.g. a pod on the host network): it must say on purpose which agent it means to drive
 *   (`Origin: http://127.0.0.1:8497`, as `curl -H` can) or hold the token; an accidental or
 *   blind request is refused. Reads stay open on loopback (health, metrics, status).
 * - A valid bearer token passes both checks: a page cannot know it (the cookie is `SameSite=Strict`
 *   and bound to the agent's own name, so it never rides along a cross-site or rebound request).
 */

export type Refusal = { readonly status: 400 | 401 | 403; readonly error: string }

const COOKIE = 'tapio_token'
export const TOKEN_COOKIE = COOKIE

/** Constant-time comparison; length is not secret (the token is at least 16 characters). */
export function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function bearerOk(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return false
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')
  return bearer !== null && sameSecret(bearer[1] as string, token)
}

/** The `tapio_token` cookie; a cookie header that cannot be decoded is the client's error (400). */
export function tokenCookie(req: IncomingMessage): string | Refusal | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== COOKIE) continue
    try {
      return decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      return { status: 400, error: `malformed cookie ${COOKIE} (bad percent-encoding)` }
    }
  }
  return undefined
}

/** `host[:port]` of a Host header, the brackets of an IPv6 literal removed; lower case. */
function hostName(header: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(header.trim())
  if (!m) return undefined
  const name = (m[1] as string).toLowerCase()
  return name.startsWith('[') ? name.slice(1, -1) : name
}

const WILDCARD = new Set(['0.0.0.0', '::', ''])

export interface GuardOptions {
  /** `http.host`: the configured bind address or name. */
  readonly host: string
  readonly token?: string
}

/** Names a `Host` header may carry for this agent, besides IP literals. */
function allowedNames(host: string): Set<string> {
  const names = new Set(['localhost'])
  if (!WILDCARD.has(host)) names.add(host.toLowerCase())
  return names
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** A guard for one server: `undefined` lets the request through, a `Refusal` answers it. */
export function requestGuard(options: GuardOptions): (req: IncomingMessage) => Refusal | undefined {
  const names = allowedNames(options.host)
  return (req) => {
    const target = req.url ?? ''
    // Only origin-form targets (`/path?query`): an absolute-form target would name another host
    // than the one checked below, and `*` means nothing here.
    if (!target.startsWith('/') || target.startsWith('//')) return { status: 400, error: 'malformed request target (expected /path)' }
    if (bearerOk(req, options.token)) return undefined
    const hostHeader = req.headers.host
    if (hostHeader !== undefined) {
      const name = hostName(hostHeader)
      if (name === undefined) return { status: 400, error: 'malformed Host header' }
      if (isIP(name) === 0 && !names.has(name)) return { status: 403, error: `host ${JSON.stringify(name)} is not this agent (DNS rebinding is refused)` }
    }
    const origin = req.headers.origin
    if (origin !== undefined) {
      if (hostHeader === undefined || origin.toLowerCase() !== `http://${hostHeader.trim().toLowerCase()}`)
        return { status: 403, error: `cross-origin request refused (Origin ${origin})` }
      return undefined
    }
    if (SAFE_METHODS.has(req.method ?? 'GET')) return undefined
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      return { status: 403, error: `cross-site request refused (Sec-Fetch-Site ${site})` }
    return {
      status: 403,
      error: 'a state-changing request needs a same-origin Origin header (e.g. Origin: http://127.0.0.1:<port>) or the token (Authorization: Bearer <token>)',
    }
  }
}
