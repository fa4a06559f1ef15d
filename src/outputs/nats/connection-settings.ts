/**
 * How the output and the reader reach a NATS server securely: TLS (server verification, client
 * certificate, server name) and the authentication method. Every secret and certificate comes
 * from a file that is read again at each (re)connect, so a rotated file takes effect at the next
 * reconnect, which a SIGHUP forces.
 *
 * The settings and their checks live here, apart from the NATS client in `connection.ts`: the
 * agent's configuration checks them whether or not a NATS output runs, and must not load the
 * client to do so.
 */

export interface NatsTlsSettings {
  /** PEM file of the CA(s) that signed the server's certificate (default: the system's trust store). */
  readonly caFile?: string
  /** PEM client certificate (mutual TLS), with keyFile. */
  readonly certFile?: string
  readonly keyFile?: string
  /** Name the server's certificate must carry, when it differs from the host in the URL. */
  readonly serverName?: string
}

export interface NatsConnectionSettings {
  readonly servers: readonly string[]
  readonly tls?: NatsTlsSettings
  /** Inline secrets (kept for compatibility; prefer the file forms). */
  readonly token?: string
  readonly user?: string
  readonly pass?: string
  readonly tokenFile?: string
  /** Password of `user`, read from this file. */
  readonly passFile?: string
  /** NKEY user seed (`SU…`), read from this file. */
  readonly nkeySeedFile?: string
  /** Credentials file (`.creds`: user JWT and NKEY seed), as `nsc` writes it. */
  readonly credsFile?: string
}

/** Whether the settings ask for TLS (a `tls` block or a `tls://` URL). */
export function wantsTls(s: NatsConnectionSettings): boolean {
  return s.tls !== undefined || s.servers.some((u) => /^tls:\/\//i.test(u))
}

/** Which authentication the settings configure (for messages: never the secret itself). */
export function authMethod(s: NatsConnectionSettings): string {
  if (s.credsFile !== undefined) return `credentials file ${s.credsFile}`
  if (s.nkeySeedFile !== undefined) return `NKEY seed file ${s.nkeySeedFile}`
  if (s.tokenFile !== undefined) return `token file ${s.tokenFile}`
  if (s.token !== undefined) return 'token'
  if (s.user !== undefined) return `user ${JSON.stringify(s.user)}${s.passFile !== undefined ? ` (password file ${s.passFile})` : ''}`
  if (s.tls?.certFile !== undefined) return `client certificate ${s.tls.certFile}`
  return 'no credentials'
}

/** Combinations that cannot work, each named (empty when fine). */
export function connectionProblems(s: NatsConnectionSettings, at = 'outputs.nats'): string[] {
  const problems: string[] = []
  const methods = [
    s.credsFile !== undefined && 'credsFile',
    s.nkeySeedFile !== undefined && 'nkeySeedFile',
    (s.token !== undefined || s.tokenFile !== undefined) && 'token',
    s.user !== undefined && 'user',
  ].filter((m): m is string => typeof m === 'string')
  if (methods.length > 1) problems.push(`${at}: choose one authentication method, got ${methods.join(' and ')}`)
  if (s.token !== undefined && s.tokenFile !== undefined) problems.push(`${at}: token and tokenFile are exclusive`)
  if (s.pass !== undefined && s.passFile !== undefined) problems.push(`${at}: pass and passFile are exclusive`)
  if ((s.pass !== undefined || s.passFile !== undefined) && s.user === undefined) problems.push(`${at}: a password needs user`)
  const t = s.tls
  if (t && (t.certFile === undefined) !== (t.keyFile === undefined)) problems.push(`${at}.tls: certFile and keyFile go together (mutual TLS needs both)`)
  if (wantsTls(s) && s.servers.some((u) => /^nats:\/\//i.test(u) === false && /^[a-z]+:\/\//i.test(u) && !/^tls:\/\//i.test(u)))
    problems.push(`${at}.servers: expected nats:// or tls:// URLs`)
  return problems
}
