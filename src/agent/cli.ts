#!/usr/bin/env node
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Agent } from './agent.js'
import { type AgentConfig, ConfigError, configJsonSchema, loadConfigFile } from './config.js'
import { consumeEvents } from '../outputs/nats/consumer.js'
import { loadConfigFileOffThread } from './config-load.js'
import { Reloader } from './reloader.js'
import { Redactor, redactShapes } from './redact.js'
import { createLogger, LOG_FORMATS, type LogFormat } from './logger.js'
import { probeMain } from './probe.js'
import { createEnricher } from '../enrich/enricher.js'
import { MetadataHub } from '../enrich/hub.js'
import { builtinKinds, kindMap, validators } from './registry.js'

const USAGE = `tapio-agent: supervised observability collectors, one unified event stream

usage:
  tapio-agent [run] [--config agent.yaml] [--http-port N] [--output FILE] [--log-format json|text]
  tapio-agent status [--url URL] [--token T] [--json]
  tapio-agent tail [--url URL] [--token T] [--source S] [--type T] [--severity LEVEL]
  tapio-agent probe ready|live [--url URL] [--token T]
  tapio-agent consume --durable NAME [--servers URL,URL] [--filter SUBJECT] [--stream NAME] [--ack-wait-ms N] [--config agent.yaml]
  tapio-agent check-config --config agent.yaml
  tapio-agent config-schema [--out FILE]

run            start every collector this machine supports; events as NDJSON on stdout (or --output)
status         ask a running agent and print its collectors, states, rates, restarts and drops
tail           follow a running agent's live events (/events)
probe          exit 0 when a running agent answers /readyz (ready) or /healthz (live) with 200, else 1
               (Kubernetes exec probes; \`node dist/src/agent/probe.js ready\` is the same, cheaper)
consume        read the events every agent published to NATS JetStream through a durable consumer,
               as NDJSON on stdout; a restart with the same --durable resumes where it stopped
check-config   validate a config file and exit (0 valid, 2 invalid)
config-schema  print the JSON Schema of the config file (for editors)

signals: SIGTERM/SIGINT stop gracefully (a second one forces), SIGHUP reloads the config file.
`

// Kubernetes collectors publish their caches here; the enricher reads them for node events.
const metadataHub = new MetadataHub()
const kinds = builtinKinds({ metadataHub })
const byKind = kindMap(kinds)
const checks = validators(kinds)

function fail(message: string, code = 2): never {
  process.stderr.write(`${redactShapes(message)}\n`)
  process.exit(code)
}

function loadOrExit(path: string | undefined): AgentConfig {
  try {
    return loadConfigFile(path, checks)
  } catch (e) {
    if (e instanceof ConfigError) fail(`tapio-agent: ${e.message}`)
    throw e
  }
}

function withOverrides(config: AgentConfig, httpPort: string | undefined, output: string | undefined, logFormat?: string): AgentConfig {
  let c = config
  if (logFormat !== undefined) {
    if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) fail(`tapio-agent: --log-format: expected ${LOG_FORMATS.join(' or ')}, got ${JSON.stringify(logFormat)}`)
    c = { ...c, log: { ...c.log, format: logFormat as LogFormat } }
  }
  if (httpPort !== undefined) {
    const port = Number(httpPort)
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`tapio-agent: --http-port: expected an integer 0-65535, got ${JSON.stringify(httpPort)}`)
    c = { ...c, http: { ...c.http, enabled: true, port } }
  }
  if (output !== undefined) {
    c = { ...c, outputs: { stdout: false, file: { path: output, maxBytes: c.outputs.file?.maxBytes ?? 100 * 1024 * 1024, maxFiles: c.outputs.file?.maxFiles ?? 5 } } }
  }
  return c
}

async function run(values: { config?: string; 'http-port'?: string; output?: string; 'log-format'?: string }): Promise<void> {
  const configPath = values.config
  const config = withOverrides(loadOrExit(configPath), values['http-port'], values.output, values['log-format'])
  // One redactor for stderr and HTTP bodies; it learns the secrets of every config it sees.
  const redactor = new Redactor().addConfig(config)
  const logger = createLogger(config.log.level, undefined, config.log.format, redactor.redact)
  const agent = new Agent(config, { kinds: byKind, logger, redactor, enricher: createEnricher(metadataHub) })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: forcing exit`)
      process.exit(1)
    }
    stopping = true
    logger.info(`${signal}: stopping (drain, then exit)`)
    agent.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error('stop failed', { error: String(e) })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // Reloads run one at a time; SIGHUPs during one coalesce into one more run that reads the file
  // then. The file is parsed on a worker thread: the event loop keeps serving probes meanwhile.
  const reloader = new Reloader(async () => {
    if (!configPath) return
    let next: AgentConfig
    try {
      next = withOverrides(await loadConfigFileOffThread(configPath), values['http-port'], values.output, values['log-format'])
    } catch (e) {
      const problems = e instanceof ConfigError ? e.problems : [String(e)]
      logger.error('SIGHUP: new config rejected; keeping the running one', { event: 'config.reload', result: 'rejected', problems })
      agent.recordReloadFailure(problems.join('; '))
      return
    }
    if (stopping) return
    logger.setLevel(next.log.level)
    await agent.reload(next).catch((e: unknown) => {
      logger.error('reload failed', { event: 'config.reload', result: 'failed', error: String(e) })
      agent.recordReloadFailure(String(e))
    })
  })
  process.on('SIGHUP', () => {
    if (stopping) return
    if (!configPath) {
      logger.warn('SIGHUP: no --config file to reload (running the embedded default)')
      return
    }
    void reloader.request()
  })
  await agent.start()
  logger.info('agent running', { node: config.node, http: agent.httpUrl ?? 'disabled', collectors: [...agent.dispositions.values()] })
}

async function consume(values: { durable?: string; servers?: string; filter?: string; stream?: string; config?: string; 'ack-wait-ms'?: string }): Promise<void> {
  if (!values.durable) fail(`tapio-agent consume: --durable NAME is required (the consumer's name on the server)\n\n${USAGE}`)
  const nats = values.config ? loadOrExit(values.config).outputs.nats : undefined
  const servers = values.servers ? values.servers.split(',').filter(Boolean) : (nats?.servers ?? ['nats://127.0.0.1:4222'])
  const ackWait = values['ack-wait-ms'] === undefined ? undefined : Number(values['ack-wait-ms'])
  if (ackWait !== undefined && !(Number.isInteger(ackWait) && ackWait > 0)) fail(`tapio-agent consume: --ack-wait-ms: expected a positive integer, got ${JSON.stringify(values['ack-wait-ms'])}`)
  const ac = new AbortController()
  const stop = () => ac.abort()
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const consumer = consumeEvents({
    servers,
    durable: values.durable,
    signal: ac.signal,
    ...(values.filter ? { filter: values.filter } : {}),
    ...(ackWait !== undefined ? { ackWaitMs: ackWait } : {}),
    ...(values.stream ? { stream: values.stream } : nats ? { stream: nats.stream.name } : {}),
    ...(nats ? { subjectPrefix: nats.subjectPrefix } : {}),
    ...(nats?.token !== undefined ? { token: nats.token } : {}),
    ...(nats?.user !== undefined ? { user: nats.user } : {}),
    ...(nats?.pass !== undefined ? { pass: nats.pass } : {}),
  })
  const log = createLogger('info')
  log.info('consume: reading', { servers, durable: values.durable, filter: values.filter ?? null })
  try {
    // Acknowledge only what stdout took: a reader killed mid-way gets the rest again. Confirmations
    // are awaited in groups, not one round trip per event.
    let confirming: Promise<void>[] = []
    for await (const c of consumer) {
      if (!process.stdout.write(`${JSON.stringify(c.event)}\n`)) await once(process.stdout, 'drain')
      confirming.push(c.ack())
      if (confirming.length >= 1000) {
        await Promise.all(confirming)
        confirming = []
      }
    }
    await Promise.all(confirming)
  } catch (e) {
    log.error('consume failed', { error: e instanceof Error ? e.message : String(e), ...consumer.statistics() })
    process.exit(1)
  }
  log.info('consume: stopped', { ...consumer.statistics() })
}

interface StatusCollector {
  state: string
  status: string
  eventsPerSec: number
  accepted: number
  delivered: number
  dropped: number
  restarts: number
  lastError: string | null
  message?: string | null
}

async function fetchJson(url: string, token: string | undefined): Promise<unknown> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }).catch((e: unknown) =>
    fail(`tapio-agent: cannot reach ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : String(e)}`, 1),
  )
  if (!res.ok) fail(`tapio-agent: ${url}: HTTP ${res.status} ${await res.text()}`, 1)
  return res.json()
}

async function status(values: { url?: string; token?: string; json?: boolean }): Promise<void> {
  const base = values.url ?? 'http://127.0.0.1:9464'
  const s = (await fetchJson(`${base}/api/status`, values.token)) as {
    status: string
    buffer: { size: number; capacity: number; policy: string }
    totals: { accepted: number; delivered: number; dropped: { total: number }; restarts: number }
    collectors: Record<string, StatusCollector>
    skipped: { name: string; outcome: string; reason?: string }[]
    outputs?: Record<string, { ready: boolean; lastError: string | null; written: number; details?: { pendingEvents?: number } }>
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`)
    return
  }
  const rows = [['COLLECTOR', 'STATE', 'STATUS', 'EVENTS/S', 'ACCEPTED', 'DELIVERED', 'DROPPED', 'RESTARTS', 'REASON / LAST ERROR']]
  for (const [name, c] of Object.entries(s.collectors)) {
    // The collector's own health message says why it is degraded while running; lastError why it failed.
    const reason = c.status !== 'ok' && c.message ? c.message : (c.lastError ?? '')
    rows.push([name, c.state, c.status, String(c.eventsPerSec), String(c.accepted), String(c.delivered), String(c.dropped), String(c.restarts), reason])
  }
  for (const k of s.skipped) rows.push([k.name, k.outcome, '-', '-', '-', '-', '-', '-', k.reason ?? ''])
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const out = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n')
  process.stdout.write(
    `status: ${s.status}   buffer: ${s.buffer.size}/${s.buffer.capacity} (${s.buffer.policy})   accepted: ${s.totals.accepted}   delivered: ${s.totals.delivered}   dropped: ${s.totals.dropped.total}   restarts: ${s.totals.restarts}\n${outputLines(s.outputs)}\n${out}\n`,
  )
}

function outputLines(outputs: Record<string, { ready: boolean; lastError: string | null; written: number; details?: { pendingEvents?: number } }> | undefined): string {
  return Object.entries(outputs ?? {})
    .map(([name, o]) => `output ${name}: ${o.ready ? 'ready' : 'NOT READY'}   written: ${o.written}   pending: ${o.details?.pendingEvents ?? 0}${o.lastError && !o.ready ? `   last error: ${o.lastError}` : ''}\n`)
    .join('')
}

async function tail(values: { url?: string; token?: string; source?: string; type?: string; severity?: string }): Promise<void> {
  const base = values.url ?? 'http://127.0.0.1:9464'
  const q = new URLSearchParams()
  if (values.source) q.set('source', values.source)
  if (values.type) q.set('type', values.type)
  if (values.severity) q.set('severity', values.severity)
  const url = `${base}/events${q.size ? `?${q}` : ''}`
  const res = await fetch(url, { headers: values.token ? { authorization: `Bearer ${values.token}` } : {} }).catch((e: unknown) =>
    fail(`tapio-agent: cannot reach ${url}: ${String(e)}`, 1),
  )
  if (!res.ok || !res.body) fail(`tapio-agent: ${url}: HTTP ${res.status} ${await res.text()}`, 1)
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true })
    let i = buf.indexOf('\n\n')
    while (i >= 0) {
      const frame = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const event = /^event: (.*)$/m.exec(frame)?.[1] ?? 'message'
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n')
      if (event === 'message' && data) process.stdout.write(`${data}\n`)
      else if (event === 'dropped') process.stderr.write(`tail: this client fell behind and lost events: ${data}\n`)
      i = buf.indexOf('\n\n')
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const first = argv[0]
  const command = first && !first.startsWith('-') ? first : 'run'
  const rest = command === first ? argv.slice(1) : argv
  if (command === 'probe') {
    process.exitCode = await probeMain(rest)
    return
  }
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        'http-port': { type: 'string' },
        'log-format': { type: 'string' },
        output: { type: 'string', short: 'o' },
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        source: { type: 'string' },
        type: { type: 'string' },
        severity: { type: 'string' },
        out: { type: 'string' },
        durable: { type: 'string' },
        servers: { type: 'string' },
        filter: { type: 'string' },
        stream: { type: 'string' },
        'ack-wait-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    })
  } catch (e) {
    fail(`tapio-agent: ${(e as Error).message}\n\n${USAGE}`)
  }
  const values = parsed.values
  if (values.help || command === 'help') {
    process.stdout.write(USAGE)
    return
  }
  switch (command) {
    case 'run':
      return run(values)
    case 'status':
      return status(values)
    case 'tail':
      return tail(values)
    case 'consume':
      return consume(values)
    case 'check-config': {
      const c = loadOrExit(values.config)
      process.stdout.write(`${values.config ?? 'embedded default'}: valid (${c.collectors.length} collectors)\n`)
      return
    }
    case 'config-schema': {
      const schemas = new Map(kinds.map((k) => [k.kind, k.configSchema]))
      const text = `${JSON.stringify(configJsonSchema(schemas), null, 2)}\n`
      if (values.out) writeFileSync(values.out, text)
      else process.stdout.write(text)
      return
    }
    default:
      fail(`tapio-agent: unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
  }
}

await main(process.argv.slice(2))
