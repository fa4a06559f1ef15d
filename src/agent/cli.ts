#!/usr/bin/env -S node --max-semi-space-size=8
// The flag caps V8's young generation at 2 x 8 MB (Node 20's default grows it to 2 x 16 MB): the
// agent's own process only, never a library user's. Measured in docs/performance.md (Footprint).
import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { commandHelp, COMMANDS, commandSpec, GLOBAL_OPTIONS, usage } from './cli-help.js'
import { EVENT_FORMATS, type EventFormat } from './event-format.js'
import { statusCommand, tailCommand, type Terminal } from './remote.js'
import { buildInfo } from './version.js'
import { Agent } from './agent.js'
import { type AgentConfig, ConfigError, loadConfigFile } from './config.js'
import { configJsonSchema } from './config-schema.js'
import { loadConfigFileOffThread } from './config-load.js'
import { Reloader } from './reloader.js'
import type { NatsConnectionSettings } from '../outputs/nats/connection-settings.js'
import { exitAfterStderr, writeAllSync } from './exit.js'
import { fileOutputProblem } from './outputs.js'
import { Redactor, redactShapes } from './redact.js'
import { createLogger, LOG_FORMATS, type LogFormat } from './logger.js'
import { probeMain } from './probe.js'
import { createEnricher } from '../enrich/enricher.js'
import { MetadataHub } from '../enrich/hub.js'
import { builtinKinds, kindMap, validators } from './registry.js'

// Kubernetes collectors publish their caches here; the enricher reads them for node events.
const metadataHub = new MetadataHub()
const kinds = builtinKinds({ metadataHub })
const byKind = kindMap(kinds)
const checks = validators(kinds)

function fail(message: string, code = 2): never {
  writeAllSync(2, `${redactShapes(message)}\n`)
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
    c = { ...c, outputs: { stdout: false, flushTimeoutMs: c.outputs.flushTimeoutMs, file: { path: output, maxBytes: c.outputs.file?.maxBytes ?? 100 * 1024 * 1024, maxFiles: c.outputs.file?.maxFiles ?? 5 } } }
  }
  return c
}

/**
 * The file output's directory: created when missing; otherwise a clear reason why events cannot
 * go there (named after the flag or config key the path came from).
 */
function prepareFileOutput(path: string, origin: string): void {
  const dir = dirname(resolve(path))
  try {
    mkdirSync(dir, { recursive: true })
  } catch (e) {
    fail(`tapio-agent: ${origin} ${path}: cannot create the directory ${dir}: ${(e as Error).message}`)
  }
  try {
    accessSync(dir, constants.W_OK)
  } catch {
    fail(`tapio-agent: ${origin} ${path}: the directory ${dir} is not writable by this user`)
  }
  let isDir = false
  try {
    isDir = statSync(path).isDirectory()
  } catch {
    // Not there yet: it will be created.
  }
  if (isDir) fail(`tapio-agent: ${origin} ${path}: is a directory; give a file path (events go to FILE, rotated to FILE.1, FILE.2 ...)`)
}

async function run(values: { config?: string; 'http-port'?: string; output?: string; 'log-format'?: string }): Promise<void> {
  const configPath = values.config
  const config = withOverrides(loadOrExit(configPath), values['http-port'], values.output, values['log-format'])
  if (config.outputs.file) prepareFileOutput(config.outputs.file.path, values.output !== undefined ? '--output' : 'outputs.file.path')
  // One redactor for stderr and HTTP bodies; it learns the secrets of every config it sees.
  const redactor = new Redactor().addConfig(config)
  const logger = createLogger(config.log.level, undefined, config.log.format, redactor.redact)
  const agent = new Agent(config, { kinds: byKind, logger, redactor, enricher: createEnricher(metadataHub) })
  let stopping = false
  const stop = (signal: string, why = `${signal}: stopping (drain, then exit)`) => {
    if (stopping) {
      logger.warn(`${signal} again: forcing exit`)
      process.exit(1)
    }
    stopping = true
    logger.info(why)
    agent.stop().then(
      () => exitAfterStderr(0),
      (e: unknown) => {
        logger.error('stop failed', { error: String(e) })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // The reader of stdout went away (`tapio-agent | head`): stop as on SIGTERM, with one line
  // saying why; what could not be written is counted in the final line.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    agent.outputFailed('stdout', e)
    if (stopping) return
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') stop('stdout', 'stdout closed by its reader: stopping (drain, then exit)')
    else stop('stdout', `stdout failed (${e.message}): stopping (drain, then exit)`)
  })
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
  try {
    await agent.start()
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    const where = `${config.http.host}:${config.http.port}`
    const flag = values['http-port'] !== undefined ? '--http-port' : 'http.port in the config (or --http-port)'
    if (err.code === 'EADDRINUSE')
      fail(`tapio-agent: cannot listen on ${where}: the address is already in use (another agent?); choose another port with ${flag} (0 picks a free one)`, 1)
    if (err.code === 'EACCES')
      fail(`tapio-agent: cannot listen on ${where}: permission denied (ports below 1024 need privileges); choose another port with ${flag}`, 1)
    if (err.code === 'EADDRNOTAVAIL') fail(`tapio-agent: cannot listen on ${where}: no such address on this machine; check http.host`, 1)
    throw e
  }
  logger.info('agent running', { node: config.node, http: agent.httpUrl ?? 'disabled', collectors: [...agent.dispositions.values()] })
}

async function consume(values: { durable?: string; servers?: string; filter?: string; stream?: string; config?: string; 'ack-wait-ms'?: string }): Promise<void> {
  if (!values.durable) fail(`tapio-agent consume: --durable NAME is required (the consumer's name on the server); see \`tapio-agent consume --help\``)
  const nats = values.config ? loadOrExit(values.config).outputs.nats : undefined
  const servers = values.servers ? values.servers.split(',').filter(Boolean) : (nats?.servers ?? ['nats://127.0.0.1:4222'])
  const ackWait = values['ack-wait-ms'] === undefined ? undefined : Number(values['ack-wait-ms'])
  if (ackWait !== undefined && !(Number.isInteger(ackWait) && ackWait > 0)) fail(`tapio-agent consume: --ack-wait-ms: expected a positive integer, got ${JSON.stringify(values['ack-wait-ms'])}`)
  const ac = new AbortController()
  const stop = () => ac.abort()
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  // A closed stdout ends it like Ctrl-C: what was not written is not acknowledged (it comes again).
  let stdoutFailed = false
  process.stdout.on('error', () => {
    stdoutFailed = true
    stop()
  })
  const { consumeEvents } = await import('../outputs/nats/consumer.js')
  const consumer = consumeEvents({
    servers,
    durable: values.durable,
    signal: ac.signal,
    ...(values.filter ? { filter: values.filter } : {}),
    ...(ackWait !== undefined ? { ackWaitMs: ackWait } : {}),
    ...(values.stream ? { stream: values.stream } : nats ? { stream: nats.stream.name } : {}),
    ...(nats ? { subjectPrefix: nats.subjectPrefix } : {}),
    // TLS and credentials as the agent's outputs.nats has them (files, read at every connect).
    ...(nats ? pickConnection(nats) : {}),
  })
  // Rotated certificates or credentials: reconnect, which reads the files again.
  process.on('SIGHUP', () => void consumer.reconnect())
  const log = createLogger('info')
  log.info('consume: reading', { servers, durable: values.durable, filter: values.filter ?? null })
  try {
    // Acknowledge only what stdout took: a reader killed mid-way gets the rest again. Confirmations
    // are awaited in groups, not one round trip per event.
    let confirming: Promise<void>[] = []
    // A stop (SIGTERM) does not cut the message in hand short: the consumer hands out the rest of
    // its events and they are written and acknowledged, else the whole message would come again to
    // the next reader with the events this one already printed (duplicates across readers).
    for await (const c of consumer) {
      if (stdoutFailed) break
      if (!process.stdout.write(`${JSON.stringify(c.event)}\n`)) await writable(process.stdout)
      if (stdoutFailed) break
      confirming.push(c.ack())
      if (confirming.length >= 1000) {
        await Promise.all(confirming)
        confirming = []
      }
    }
    await Promise.all(confirming)
  } catch (e) {
    if (ac.signal.aborted) return void log.info('consume: stopped', { ...consumer.statistics() })
    log.error('consume failed', { error: e instanceof Error ? e.message : String(e), ...consumer.statistics() })
    process.exit(1)
  }
  log.info('consume: stopped', { ...consumer.statistics() })
}

function pickConnection(n: NatsConnectionSettings): Omit<NatsConnectionSettings, 'servers'> {
  return {
    ...(n.tls !== undefined ? { tls: n.tls } : {}),
    ...(n.token !== undefined ? { token: n.token } : {}),
    ...(n.user !== undefined ? { user: n.user } : {}),
    ...(n.pass !== undefined ? { pass: n.pass } : {}),
    ...(n.tokenFile !== undefined ? { tokenFile: n.tokenFile } : {}),
    ...(n.passFile !== undefined ? { passFile: n.passFile } : {}),
    ...(n.nkeySeedFile !== undefined ? { nkeySeedFile: n.nkeySeedFile } : {}),
    ...(n.credsFile !== undefined ? { credsFile: n.credsFile } : {}),
  }
}

/** stdout/stderr for the commands that talk to a running agent. */
function terminal(): Terminal {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    isTTY: process.stdout.isTTY === true,
  }
}

/** Ctrl-C, SIGTERM or a closed stdout (`tapio-agent tail | head -1`) end a client command quietly. */
function clientSignal(): AbortSignal {
  const ac = new AbortController()
  process.once('SIGINT', () => ac.abort())
  process.once('SIGTERM', () => ac.abort())
  process.stdout.on('error', () => ac.abort())
  return ac.signal
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) fail(`tapio-agent: ${flag}: expected a positive integer, got ${JSON.stringify(v)}`)
  return n
}

const DEFAULT_URL = 'http://127.0.0.1:8497'

async function status(values: { url?: string; token?: string; json?: boolean; watch?: boolean; interval?: string }): Promise<void> {
  const interval = values.interval === undefined ? 2 : Number(values.interval)
  if (!(interval > 0)) fail(`tapio-agent status: --interval: expected a number of seconds > 0, got ${JSON.stringify(values.interval)}`)
  process.exitCode = await statusCommand({
    url: values.url ?? DEFAULT_URL,
    ...(values.token ? { token: values.token } : {}),
    signal: clientSignal(),
    term: terminal(),
    json: values.json === true,
    watch: values.watch === true,
    intervalMs: interval * 1000,
  })
}

async function tail(values: { url?: string; token?: string; source?: string[]; type?: string[]; severity?: string; format?: string; limit?: string }): Promise<void> {
  const format = values.format ?? 'json'
  if (!(EVENT_FORMATS as readonly string[]).includes(format)) fail(`tapio-agent tail: --format: expected ${EVENT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`)
  const list = (v: string[] | undefined) => (v ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)
  const limit = positiveInt('--limit', values.limit)
  process.exitCode = await tailCommand({
    url: values.url ?? DEFAULT_URL,
    ...(values.token ? { token: values.token } : {}),
    signal: clientSignal(),
    term: terminal(),
    sources: list(values.source),
    types: list(values.type),
    ...(values.severity ? { severity: values.severity } : {}),
    format: format as EventFormat,
    ...(limit !== undefined ? { limit } : {}),
  })
}

function version(): string {
  const b = buildInfo()
  return `tapio-agent ${b.version} (${b.name}, Node.js ${b.node})\n`
}

async function main(argv: string[]): Promise<void> {
  const first = argv[0]
  const named = first !== undefined && !first.startsWith('-')
  const command = named ? first : 'run'
  const rest = named ? argv.slice(1) : argv
  if (command === 'help') {
    const about = rest[0] === undefined ? undefined : commandSpec(rest[0])
    if (rest[0] !== undefined && !about) fail(`tapio-agent: no command ${JSON.stringify(rest[0])}; the commands are ${COMMANDS.map((c) => c.name).join(', ')}`)
    process.stdout.write(about ? commandHelp(about) : usage())
    return
  }
  const spec = commandSpec(command)
  if (!spec) fail(`tapio-agent: unknown command ${JSON.stringify(command)}; the commands are ${COMMANDS.map((c) => c.name).join(', ')} (\`tapio-agent --help\`)`)
  if (command === 'probe' && !rest.some((a) => a === '--help' || a === '-h' || a === '--version' || a === '-V')) {
    process.exitCode = await probeMain(rest)
    return
  }
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: { ...spec.options, ...GLOBAL_OPTIONS }, strict: true, allowPositionals: command === 'probe' })
  } catch (e) {
    fail(`tapio-agent ${command}: ${(e as Error).message}\nusage: ${spec.usage}\n(\`tapio-agent ${command} --help\` for the details)`)
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>
  if (values.version) {
    process.stdout.write(version())
    return
  }
  if (values.help) {
    // `tapio-agent --help` (no command named) is the overview; `tapio-agent status --help` the command's own.
    process.stdout.write(named ? commandHelp(spec) : usage())
    return
  }
  switch (command) {
    case 'run':
      return run(values as Parameters<typeof run>[0])
    case 'status':
      return status(values as Parameters<typeof status>[0])
    case 'tail':
      return tail(values as Parameters<typeof tail>[0])
    case 'consume':
      return consume(values as Parameters<typeof consume>[0])
    case 'check-config': {
      const path = values.config as string | undefined
      const c = loadOrExit(path)
      // Valid YAML can still name a file the agent could never write.
      const fileProblem = c.outputs.file ? fileOutputProblem(c.outputs.file.path) : undefined
      if (fileProblem) fail(`tapio-agent: invalid configuration (${path ?? 'embedded default'}):\n  - outputs.file.path: ${fileProblem}`)
      process.stdout.write(`${path ?? 'embedded default'}: valid (${c.collectors.length} collectors)\n`)
      return
    }
    case 'config-schema': {
      const text = `${JSON.stringify(configJsonSchema(kinds), null, 2)}\n`
      const out = values.out as string | undefined
      if (out) writeFileSync(out, text)
      else process.stdout.write(text)
      return
    }
  }
}

await main(process.argv.slice(2))

/** Resolves when the stream drains, or when it fails or closes (then nothing more is written). */
function writable(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done)
      stream.off('error', done)
      stream.off('close', done)
      resolve()
    }
    stream.once('drain', done)
    stream.once('error', done)
    stream.once('close', done)
  })
}
