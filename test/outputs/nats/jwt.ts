import { createHash } from 'node:crypto'
import { nkeys } from '@nats-io/transport-node'

/**
 * Operator/account/user JWTs for a nats-server in operator mode with a memory resolver: what
 * `nsc` would make, signed with real NKEYs. Hand-written because no maintained JWT-issuing
 * library is a dependency (the format is three base64url parts, ed25519-nkey signed).
 */

type KeyPair = ReturnType<typeof nkeys.createOperator>

const b64url = (b: Uint8Array | string) => Buffer.from(b).toString('base64url')

function encode(signer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: signer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } }
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url').slice(0, 52).toUpperCase()
  const body = b64url(JSON.stringify(claims))
  const sig = b64url(signer.sign(new TextEncoder().encode(`${header}.${body}`)))
  return `${header}.${body}.${sig}`
}

export interface OperatorSetup {
  /** nats-server configuration lines (operator, memory resolver with the account preloaded). */
  readonly serverConfig: string[]
  /** A `.creds` file's text for a user of the account. */
  readonly creds: string
  /** A `.creds` text whose user is signed by a different account key (the server rejects it). */
  readonly foreignCreds: string
}

function credsText(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----
${jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
${seed}
------END USER NKEY SEED------
`
}

export function operatorSetup(): OperatorSetup {
  const op = nkeys.createOperator()
  const acc = nkeys.createAccount()
  const sys = nkeys.createAccount()
  const user = nkeys.createUser()
  const stranger = nkeys.createAccount()
  const limits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 }
  const opJwt = encode(op, op.getPublicKey(), 'tapio-test-operator', { type: 'operator', system_account: sys.getPublicKey() })
  const accJwt = encode(op, acc.getPublicKey(), 'TAPIO', { type: 'account', limits, default_permissions: { pub: {}, sub: {} } })
  const sysJwt = encode(op, sys.getPublicKey(), 'SYS', { type: 'account', limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 } })
  const userNats = { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 }
  const userJwt = encode(acc, user.getPublicKey(), 'agent', userNats)
  const foreignJwt = encode(stranger, user.getPublicKey(), 'agent', userNats)
  const seed = new TextDecoder().decode(user.getSeed())
  return {
    serverConfig: [
      `operator: ${opJwt}`,
      `system_account: ${sys.getPublicKey()}`,
      'resolver: MEMORY',
      `resolver_preload: { ${acc.getPublicKey()}: ${accJwt}, ${sys.getPublicKey()}: ${sysJwt} }`,
    ],
    creds: credsText(userJwt, seed),
    foreignCreds: credsText(foreignJwt, seed),
  }
}
