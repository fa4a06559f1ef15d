/**
 * Secrets never leave the process in clear: not on stderr, not in an HTTP body, not in a CLI
 * message. Two nets, applied where text leaves (logger, HTTP JSON, inspector feed, CLI errors):
 * - shapes that are secret wherever they appear: the userinfo of a URL (`nats://alice:pw@host`,
 *   also a token as `nats://TOKEN@host`), `Bearer …`, `token=` / `password=` / `pass=` /
 *   `secret=` in a query string or logfmt;
 * - the configured secret values themselves (`http.token`, `outputs.nats.token` / `.pass` and the
 *   userinfo of `outputs.nats.servers`), wherever they turn up verbatim (an error message quoting
 *   them, a field that echoes them).
 */

export const MASK = '***'

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi
// An Authorization header value (case-sensitive: "a bearer token" in prose is not one).
const BEARER = /\b(Bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}/g
// `token=…` in a query string or a logfmt line (not `token: …`, which is how prose names a key).
const KEY_VALUE = /\b((?:access_?token|token|password|passwd|pass|secret|api_?key)=)(?!\*\*\*)("?)[^\s"&,;]+/gi

/** Redact the secret shapes only (no configured values known): for text of unknown origin. */
export function redactShapes(text: string): string {
  return text.replace(URL_USERINFO, `$1${MASK}@`).replace(BEARER, `$1${MASK}`).replace(KEY_VALUE, `$1$2${MASK}`)
}

/** Key names whose values are secret in a config (so a config error never echoes them). */
export const SECRET_KEY = /^(token|pass|password|passwd|secret|api_?key|access_?token)$/i

/** The userinfo part of a URL, if it has one. */
function userinfo(url: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]+)@/i.exec(url)
  if (!m) return []
  const info = m[1] as string
  const colon = info.indexOf(':')
  return colon < 0 ? [info, decodeSafe(info)] : [info.slice(colon + 1), decodeSafe(info.slice(colon + 1))]
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

export class Redactor {
  private readonly secrets = new Set<string>()
  private ordered: string[] = []

  /** Remember a secret value; very short ones are not worth masking (they would mask prose). */
  add(...values: readonly (string | undefined)[]): this {
    for (const v of values) if (v !== undefined && v.length >= 4) this.secrets.add(v)
    // Longest first, so a secret containing another is masked whole.
    this.ordered = [...this.secrets].sort((a, b) => b.length - a.length)
    return this
  }

  /** Secrets of an agent config (call again on reload: old ones stay masked). */
  addConfig(config: { readonly http?: { readonly token?: string }; readonly outputs?: { readonly nats?: { readonly token?: string; readonly pass?: string; readonly servers?: readonly string[] } } }): this {
    const nats = config.outputs?.nats
    return this.add(config.http?.token, nats?.token, nats?.pass, ...(nats?.servers ?? []).flatMap(userinfo))
  }

  readonly redact = (text: string): string => {
    let out = redactShapes(text)
    for (const s of this.ordered) if (out.includes(s)) out = out.split(s).join(MASK)
    return out
  }

  /** Every string in a JSON-like value redacted (for bodies built as objects). */
  readonly redactValue = <T>(value: T): T => JSON.parse(this.redact(JSON.stringify(value) ?? 'null')) as T
}
