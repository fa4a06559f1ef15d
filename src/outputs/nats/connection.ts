/** Connecting to NATS with the settings of `connection-settings.ts`: TLS options, authenticators, error diagnosis. */
import { readFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type NodeConnectionOptions,
} from '@nats-io/transport-node'
import { type Clock, systemClock } from '../../core/clock.js'
import { authMethod, type NatsConnectionSettings, wantsTls } from './connection-settings.js'

export { authMethod, connectionProblems, type NatsConnectionSettings, type NatsTlsSettings, wantsTls } from './connection-settings.js'

function readText(path: string, what: string, trim = true): string {
  try {
    const text = readFileSync(path, 'utf8')
    // A .creds file's parser needs the line break after its last marker.
    return trim ? text.trim() : `${text.trimEnd()}\n`
  } catch (e) {
    throw new Error(`cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
}

/** The files are read on every connect, so a rotated file is used from the next reconnect on. */
function authenticator(s: NatsConnectionSettings): Authenticator | undefined {
  const enc = new TextEncoder()
  if (s.credsFile !== undefined) {
    const f = s.credsFile
    return credsAuthenticator(() => enc.encode(readText(f, 'credentials file', false)))
  }
  if (s.nkeySeedFile !== undefined) {
    const f = s.nkeySeedFile
    return nkeyAuthenticator(() => enc.encode(readText(f, 'NKEY seed file')))
  }
  if (s.tokenFile !== undefined) {
    const f = s.tokenFile
    return tokenAuthenticator(() => readText(f, 'token file'))
  }
  if (s.user !== undefined && s.passFile !== undefined) {
    const f = s.passFile
    return usernamePasswordAuthenticator(s.user, () => readText(f, 'password file'))
  }
  return undefined
}

/** The client options for these settings (servers, TLS, authentication). */
export function connectOptions(s: NatsConnectionSettings): Pick<NodeConnectionOptions, 'servers' | 'tls' | 'token' | 'user' | 'pass' | 'authenticator'> {
  const auth = authenticator(s)
  const t = s.tls
  return {
    servers: [...s.servers],
    // With `tls` set the client refuses a server that offers no TLS ("server does not support 'tls'").
    ...(wantsTls(s)
      ? {
          tls: {
            ...(t?.caFile !== undefined ? { caFile: t.caFile } : {}),
            ...(t?.certFile !== undefined ? { certFile: t.certFile } : {}),
            ...(t?.keyFile !== undefined ? { keyFile: t.keyFile } : {}),
            ...(t?.serverName !== undefined ? { servername: t.serverName } : {}),
          },
        }
      : {}),
    ...(auth ? { authenticator: auth } : {}),
    ...(!auth && s.token !== undefined ? { token: s.token } : {}),
    ...(!auth && s.user !== undefined ? { user: s.user } : {}),
    ...(!auth && s.pass !== undefined ? { pass: s.pass } : {}),
  }
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
])

/** OpenSSL's `80FC…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:…:SSL alert number 42` as `TLS alert "bad certificate" (42)`. */
function tidy(message: string): string {
  const m = /SSL routines:[^:]*:(?:sslv3|tlsv1\d?) alert ([a-z ]+):.*SSL alert number (\d+)/is.exec(message)
  return m ? `TLS alert "${m[1]}" (${m[2]}) from the server` : message.trim()
}

function chain(e: unknown): { code?: string; message: string; name: string }[] {
  const out: { code?: string; message: string; name: string }[] = []
  for (let c: unknown = e, i = 0; c instanceof Error && i < 5; c = (c as Error & { cause?: unknown }).cause, i++) {
    const code = (c as NodeJS.ErrnoException).code
    out.push({ message: tidy(c.message), name: c.name, ...(typeof code === 'string' ? { code } : {}) })
  }
  if (out.length === 0) out.push({ message: String(e), name: 'Error' })
  return out
}

/**
 * A connection failure said as what is wrong: the server's certificate not trusted, a name
 * mismatch, a client certificate the server wants, plain TCP refused, authorization. The original
 * text follows; no secret is in it (only file names).
 */
export function describeConnectError(e: unknown, s: NatsConnectionSettings): string {
  const links = chain(e)
  const text = links.map((l) => l.message).filter((m, i, a) => m && a.indexOf(m) === i).join(': ')
  const codes = links.map((l) => l.code ?? '')
  const has = (re: RegExp) => links.some((l) => re.test(l.message) || re.test(l.code ?? ''))
  const ca = s.tls?.caFile !== undefined ? `the CA file ${s.tls.caFile}` : "the system's trust store"
  // A client without TLS settings still upgrades when the server requires it (system trust store).
  const tls = wantsTls(s) ? 'TLS' : 'the server requires TLS and none is configured (outputs.nats.tls)'
  if (codes.some((c) => UNTRUSTED.has(c)) || has(/self[- ]signed|unable to verify|unable to get (local )?issuer/i))
    return `${tls}: the server's certificate is not trusted by ${ca} (${text})`
  if (codes.includes('ERR_TLS_CERT_ALTNAME_INVALID') || has(/does not match certificate|altnames/i))
    return `${tls}: name mismatch: the server's certificate is not valid for ${s.tls?.serverName !== undefined ? `the server name ${JSON.stringify(s.tls.serverName)}` : 'the host in the URL (set tls.serverName to the name in its certificate)'} (${text})`
  // Servers answer a missing and an untrusted client certificate with the same alert.
  if (has(/certificate required|bad certificate|unknown ca|handshake failure|alert number (116|42|48|40)\b/i))
    return s.tls?.certFile === undefined
      ? `${tls}: the server requires a client certificate (mutual TLS) and none is configured (tls.certFile, tls.keyFile) (${text})`
      : `${tls}: the server rejected the client certificate ${s.tls.certFile} (not signed by a CA it trusts, or expired) (${text})`
  if (has(/server does not support 'tls'/i)) return `TLS is configured but the server offers no TLS: refusing a plain connection (${text})`
  if (links.some((l) => l.name === 'AuthorizationError') || has(/authorization violation|authentication/i))
    return `authorization: the server rejected the credentials (${authMethod(s)}) (${text})`
  if (has(/^cannot read the /)) return text
  return text
}

/**
 * Why a TLS connection that timed out failed. With TLS 1.3 the server checks the client
 * certificate after the client considers the handshake done, and the NATS client drops the
 * server's alert ("certificate required", "unknown ca"), reporting only a timeout. This repeats
 * the handshake once with the same files and returns the alert, if there is one.
 */
export async function diagnoseTls(s: NatsConnectionSettings, timeoutMs = 3000, clock: Clock = systemClock): Promise<Error | undefined> {
  const first = s.servers[0]
  if (!first || !wantsTls(s)) return undefined
  let url: URL
  try {
    url = new URL(first.replace(/^tls:/i, 'nats:'))
  } catch {
    return undefined
  }
  const t = s.tls
  let ca: Buffer | undefined
  let cert: Buffer | undefined
  let key: Buffer | undefined
  try {
    ca = t?.caFile !== undefined ? readFileSync(t.caFile) : undefined
    cert = t?.certFile !== undefined ? readFileSync(t.certFile) : undefined
    key = t?.keyFile !== undefined ? readFileSync(t.keyFile) : undefined
  } catch (e) {
    return e instanceof Error ? e : undefined
  }
  return new Promise((resolve) => {
    const sock = netConnect({ host: url.hostname, port: Number(url.port || 4222) })
    const timer = clock.setTimeout(() => finish(undefined), timeoutMs)
    let done = false
    function finish(e: Error | undefined): void {
      if (done) return
      done = true
      clock.clearTimeout(timer)
      sock.destroy()
      resolve(e)
    }
    sock.once('error', finish)
    // The server speaks first (INFO in clear), then both sides upgrade.
    sock.once('data', () => {
      const secure = tlsConnect({
        socket: sock,
        servername: t?.serverName ?? url.hostname,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
      })
      secure.once('error', finish)
      // A server that accepted the certificate answers CONNECT/PING; one that did not sends an alert.
      secure.once('secureConnect', () => secure.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n'))
      secure.once('data', () => finish(undefined))
    })
  })
}

/** A connect timeout over TLS, replaced by the TLS alert behind it when there is one. */
export async function explainTimeout(e: unknown, s: NatsConnectionSettings): Promise<unknown> {
  if (!wantsTls(s) || !(e instanceof Error) || !/timeout/i.test(`${e.name} ${e.message}`)) return e
  return (await diagnoseTls(s)) ?? e
}
