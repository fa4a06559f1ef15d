import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nkeys } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeEvent, type TapioEvent } from '../../../src/events/event.js'
import { consumeEvents, type ConsumeEventsOptions, NatsOutput, parseNatsOutputConfig } from '../../../src/outputs/nats/index.js'
import type { NatsConnectionSettings } from '../../../src/outputs/nats/connection.js'
import { waitFor } from '../../support/wait.js'
import { natsStatus, Processes, until } from './agents.js'
import { makeCa, makeLeaf, type Pem } from './certs.js'
import { operatorSetup } from './jwt.js'
import { destroyAllNatsServers, NatsServer } from './nats-server.js'

function events(n: number): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => makeEvent('tls', 'test.thing.happened', { i }))
}

/** Read with a durable consumer until `want` distinct ids arrived (or `timeoutMs`). */
async function readAll(settings: Omit<ConsumeEventsOptions, 'durable'>, durable: string, want: number, timeoutMs = 30_000) {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), timeoutMs)
  const ids = new Map<string, number>()
  const consumer = consumeEvents({ ...settings, durable, signal: ac.signal, ackWaitMs: 2000 })
  try {
    for await (const c of consumer) {
      ids.set(c.event.id, (ids.get(c.event.id) ?? 0) + 1)
      await c.ack()
      if (ids.size >= want) ac.abort()
    }
  } finally {
    clearTimeout(timer)
  }
  return ids
}

/** The error a reader with these settings fails with (it must fail). */
async function consumerError(settings: NatsConnectionSettings): Promise<string> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), 15_000)
  try {
    for await (const c of consumeEvents({ ...settings, durable: 'never', signal: ac.signal })) void c
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  } finally {
    clearTimeout(timer)
  }
  return 'the reader did not fail'
}

describe('NATS over TLS, mutual TLS, NKEY and .creds against real nats-servers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapio-nats-tls-'))
  let ca: Pem
  let wrongCa: Pem
  let client: Pem
  let foreignClient: Pem
  let secure: NatsServer
  let jwtServer: NatsServer
  let plain: NatsServer
  const user = nkeys.createUser()
  const seedFile = join(dir, 'agent.nk')
  const otherSeedFile = join(dir, 'other.nk')
  const credsFile = join(dir, 'agent.creds')
  const foreignCredsFile = join(dir, 'foreign.creds')
  /** Each failing setup's error, printed once at the end (the report quotes them). */
  const errors: Record<string, { output: string; consumer: string }> = {}

  beforeAll(async () => {
    ca = makeCa(dir, 'tapio-test-ca')
    wrongCa = makeCa(dir, 'other-ca')
    const server = makeLeaf(dir, 'nats-server', ca, { san: ['DNS:nats.tapio.test', 'IP:127.0.0.1'] })
    client = makeLeaf(dir, 'agent-client', ca, { client: true })
    foreignClient = makeLeaf(dir, 'foreign-client', wrongCa, { client: true })
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()))
    writeFileSync(otherSeedFile, new TextDecoder().decode(nkeys.createUser().getSeed()))
    const op = operatorSetup()
    writeFileSync(credsFile, op.creds)
    writeFileSync(foreignCredsFile, op.foreignCreds)
    // Mutual TLS required, and NKEY users only.
    secure = await NatsServer.start({
      name: 'mtls',
      tls: { cert: server.cert, key: server.key, ca: ca.cert, verify: true },
      extra: [`authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`],
    })
    // TLS (server verified) and operator mode: users authenticate with .creds.
    jwtServer = await NatsServer.start({ name: 'jwt', tls: { cert: server.cert, key: server.key }, extra: op.serverConfig })
    plain = await NatsServer.start({ name: 'plain' })
  }, 60_000)

  afterAll(async () => {
    await destroyAllNatsServers()
    rmSync(dir, { recursive: true, force: true })
    console.log(`failing setups and their errors:\n${JSON.stringify(errors, null, 2)}`)
  })

  const good = (): NatsConnectionSettings => ({
    servers: [secure.url.replace('nats://', 'tls://')],
    tls: { caFile: ca.cert, certFile: client.cert, keyFile: client.key, serverName: 'nats.tapio.test' },
    nkeySeedFile: seedFile,
  })

  it('mutual TLS + NKEY: 1000 events published and read back exactly once', async () => {
    const out = new NatsOutput(parseNatsOutputConfig({ ...good(), stream: { name: 'SECURE' }, maxEventsPerMessage: 20 }), { node: 'n1' })
    const sent = events(1000)
    try {
      out.start()
      for (let i = 0; i < sent.length; i += 100) await out.write(sent.slice(i, i + 100))
      await waitFor(() => out.statistics().ackedEvents === sent.length, 'every event acknowledged over mutual TLS', 30_000)
      expect(out.health().ready).toBe(true)
      expect(out.statistics().failedEvents.total).toBe(0)
    } finally {
      await out.close()
    }
    const ids = await readAll({ ...good(), stream: 'SECURE' }, 'secure-reader', sent.length)
    expect(new Set(ids.keys())).toEqual(new Set(sent.map((e) => e.id)))
    expect([...ids.values()].every((n) => n === 1)).toBe(true)
  })

  it('TLS + .creds (operator mode, memory resolver): 500 events published and read back exactly once', async () => {
    const settings: NatsConnectionSettings = { servers: [jwtServer.url], tls: { caFile: ca.cert, serverName: 'nats.tapio.test' }, credsFile }
    const out = new NatsOutput(parseNatsOutputConfig({ ...settings, stream: { name: 'CREDS' } }), { node: 'n1' })
    const sent = events(500)
    try {
      out.start()
      await out.write(sent)
      await waitFor(() => out.statistics().ackedEvents === sent.length, `every event acknowledged with .creds (have ${out.statistics().lastError})`, 30_000)
      expect(out.statistics().failedEvents.total).toBe(0)
    } finally {
      await out.close()
    }
    const ids = await readAll({ ...settings, stream: 'CREDS' }, 'creds-reader', sent.length)
    expect(new Set(ids.keys())).toEqual(new Set(sent.map((e) => e.id)))
    expect([...ids.values()].every((n) => n === 1)).toBe(true)
  })

  const failing: { name: string; settings: () => NatsConnectionSettings; expect: RegExp }[] = [
    { name: 'wrong CA', settings: () => ({ ...good(), tls: { ...good().tls, caFile: wrongCa.cert } }), expect: /^TLS: the server's certificate is not trusted by the CA file .*other-ca\.pem/ },
    { name: 'name mismatch', settings: () => ({ ...good(), tls: { ...good().tls, serverName: 'elsewhere.tapio.test' } }), expect: /^TLS: name mismatch: .*"elsewhere\.tapio\.test"/ },
    { name: 'no client certificate', settings: () => ({ ...good(), tls: { caFile: ca.cert, serverName: 'nats.tapio.test' } }), expect: /^TLS: the server requires a client certificate/ },
    {
      name: 'client certificate from a CA the server does not trust',
      settings: () => ({ ...good(), tls: { ...good().tls, certFile: foreignClient.cert, keyFile: foreignClient.key } }),
      expect: /^TLS: the server rejected the client certificate .*foreign-client\.pem/,
    },
    { name: 'unknown NKEY', settings: () => ({ ...good(), nkeySeedFile: otherSeedFile }), expect: /^authorization: the server rejected the credentials \(NKEY seed file .*other\.nk\)/ },
    { name: 'plain client, TLS server', settings: () => ({ servers: [secure.url], nkeySeedFile: seedFile }), expect: /^the server requires TLS and none is configured \(outputs\.nats\.tls\): the server's certificate is not trusted by the system's trust store/ },
    { name: 'TLS client, plain server', settings: () => ({ servers: [plain.url], tls: { caFile: ca.cert } }), expect: /^TLS is configured but the server offers no TLS: refusing a plain connection/ },
    { name: '.creds of a foreign account', settings: () => ({ servers: [jwtServer.url], tls: { caFile: ca.cert, serverName: 'nats.tapio.test' }, credsFile: foreignCredsFile }), expect: /^authorization: the server rejected the credentials \(credentials file .*foreign\.creds\)/ },
  ]

  for (const f of failing) {
    it(`${f.name}: the output is not ready and says why; the reader fails saying the same`, async () => {
      const out = new NatsOutput(parseNatsOutputConfig({ ...f.settings(), stream: { name: 'NEVER' }, retry: { initialMs: 50, maxMs: 200 }, closeTimeoutMs: 0 }), { node: 'n1' })
      try {
        out.start()
        await out.write(events(5))
        const said = () => (out.statistics().lastError ?? '').replace(/^cannot connect to \S+: /, '')
        await waitFor(() => f.expect.test(said()), `output error matching ${f.expect} (have ${JSON.stringify(out.statistics().lastError)})`, 20_000)
        expect(out.health().ready).toBe(false)
        expect(out.statistics().ackedEvents).toBe(0)
        const consumer = (await consumerError(f.settings())).replace(/^cannot connect to \S+: /, '')
        expect(consumer).toMatch(f.expect)
        errors[f.name] = { output: said(), consumer }
        // Secrets are never in the text: only file names.
        expect(said()).not.toContain(new TextDecoder().decode(user.getSeed()))
      } finally {
        await out.close()
      }
    })
  }

  it('reconnect() re-reads the certificate files: a rotated-in untrusted certificate is refused, the restored one works again', async () => {
    const certFile = join(dir, 'rotating.pem')
    const keyFile = join(dir, 'rotating.key')
    copyFileSync(client.cert, certFile)
    copyFileSync(client.key, keyFile)
    const settings = { ...good(), tls: { ...good().tls, certFile, keyFile } }
    const out = new NatsOutput(parseNatsOutputConfig({ ...settings, stream: { name: 'SECURE' }, retry: { initialMs: 50, maxMs: 200 } }), { node: 'n1' })
    try {
      out.start()
      await out.write(events(10))
      await waitFor(() => out.statistics().ackedEvents === 10, `first events acknowledged (have ${out.statistics().lastError})`)
      copyFileSync(foreignClient.cert, certFile)
      copyFileSync(foreignClient.key, keyFile)
      await out.reconnect()
      await waitFor(() => !out.health().ready && /client certificate/.test(out.statistics().lastError ?? ''), `the rotated-in certificate refused (have ${out.statistics().lastError})`)
      await out.write(events(10))
      copyFileSync(client.cert, certFile)
      copyFileSync(client.key, keyFile)
      await waitFor(() => out.statistics().ackedEvents === 20, 'events acknowledged after the good certificate is back', 30_000)
      expect(out.statistics().reconnects).toBeGreaterThanOrEqual(1)
      expect(out.statistics().failedEvents.total).toBe(0)
    } finally {
      await out.close()
    }
  })

  it('tapio-agent: /readyz names a rejected client certificate; SIGHUP re-reads the files without restarting collectors', async () => {
    const procs = new Processes()
    try {
      const certFile = join(dir, 'agent-rot.pem')
      const keyFile = join(dir, 'agent-rot.key')
      copyFileSync(client.cert, certFile)
      copyFileSync(client.key, keyFile)
      const tls = `, stream: { name: SECURE }, tls: { caFile: ${JSON.stringify(ca.cert)}, certFile: ${JSON.stringify(certFile)}, keyFile: ${JSON.stringify(keyFile)}, serverName: nats.tapio.test }, nkeySeedFile: ${JSON.stringify(seedFile)}`
      const agent = procs.agent('node-tls', [secure.url.replace('nats://', 'tls://')], '  gen: { kind: synthetic, rate: 200, batchSize: 10 }', tls)
      const url = await agent.url()
      await until(async () => (await natsStatus(agent)).details.ackedEvents > 50, 'events acknowledged over mutual TLS')
      expect((await fetch(`${url}/readyz`)).status).toBe(200)
      // Rotate in a certificate the server does not trust, and SIGHUP: the agent reconnects with it.
      copyFileSync(foreignClient.cert, certFile)
      copyFileSync(foreignClient.key, keyFile)
      agent.signal('SIGHUP')
      let body = ''
      await until(async () => {
        const r = await fetch(`${url}/readyz`)
        body = await r.text()
        return r.status === 503 && body.includes('rejected the client certificate')
      }, '/readyz to name the rejected client certificate', 40_000).catch((e: unknown) => {
        throw new Error(`${String(e)}\nlast /readyz: ${body}\nagent: ${agent.stderr.slice(-3000)}`)
      })
      expect(body).toContain('output:nats')
      expect(body).not.toContain(new TextDecoder().decode(user.getSeed()))
      copyFileSync(client.cert, certFile)
      copyFileSync(client.key, keyFile)
      agent.signal('SIGHUP')
      const before = (await natsStatus(agent)).details.ackedEvents
      await until(async () => (await fetch(`${url}/readyz`)).status === 200 && (await natsStatus(agent)).details.ackedEvents > before + 50, 'ready again, events acknowledged', 40_000)
      const reloads = agent.logs().filter((l) => l.msg === 'config reloaded')
      expect(reloads.length).toBeGreaterThanOrEqual(1)
      // The collectors ran on: no reload restarted any.
      for (const r of reloads) expect(r.restarted).toEqual([])
      expect((await natsStatus(agent)).details.failedEvents.total).toBe(0)
    } finally {
      await procs.stopAll()
    }
  }, 120_000)
})
