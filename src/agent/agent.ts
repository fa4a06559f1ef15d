import type { Writable } from 'node:stream'
import type { Enricher } from '../enrich/enricher.js'
import { CollectorManager, encodedBatchesOfManager } from '../manager/collector-manager.js'
import type { PolicyOverrides } from '../supervisor/policy.js'
import type { AgentConfig, ResolvedCollector } from './config.js'
import { AgentHttpServer } from './http.js'
import { SCRAPE_PATHS, ScrapeListener } from './scrape-http.js'
import type { LifecycleEvent } from '../supervisor/lifecycle-events.js'
import { logLifecycle } from './lifecycle-log.js'
import { SUPERVISOR_EVENTS_SOURCE, SupervisorEventsCollector } from './supervisor-events.js'
import type { Logger } from './logger.js'
import { Readiness, type ReadinessReport } from './readiness.js'
import { createMetrics } from './metrics.js'
import { NdjsonBatch } from '../outputs/ndjson.js'
import { type Output, type OutputHealth, RotatingFileOutput, StreamOutput } from './outputs.js'
import type { CollectorKind } from './registry.js'
import { TailHub } from './tail.js'
import { Redactor } from './redact.js'
import { ProcessorCounters, type ProcessorChain, type ProcessorStageStatistics } from '../processors/chain.js'
import { buildProcessorChain, processorProblems } from '../processors/spec.js'

export interface AgentOptions {
  /** Masks secrets in HTTP bodies (the CLI shares it with its logger); one from the config when absent. */
  readonly redactor?: Redactor
  readonly kinds: ReadonlyMap<string, CollectorKind>
  readonly logger: Logger
  readonly stdout?: Writable
  /** Adds pod identity to kernel/network events before they reach the outputs. */
  readonly enricher?: Enricher
}

export interface ReloadResult {
  readonly added: string[]
  readonly removed: string[]
  readonly restarted: string[]
  readonly unchanged: string[]
  readonly needsRestart: string[]
}

export type CollectorDisposition =
  | { readonly name: string; readonly kind: string; readonly outcome: 'running' }
  | { readonly name: string; readonly kind: string; readonly outcome: 'failed'; readonly reason: string }
  | { readonly name: string; readonly kind: string; readonly outcome: 'skipped'; readonly reason: string }
  | { readonly name: string; readonly kind: string; readonly outcome: 'disabled' }

export interface ReloadStatus {
  /** Reloads attempted since start, and how many of them succeeded. */
  readonly attempts: number
  readonly successes: number
  /** Whether the last reload succeeded (true before any). */
  readonly lastSuccess: boolean
  /** ms since the epoch when the configuration was last loaded successfully (start or reload). */
  readonly lastSuccessAt: number
  readonly lastError: string | null
}

function outputTotals(o: Output): { written: number; lost: number; dropped: Readonly<Record<string, number>> } {
  const dropped = o.dropped?.() ?? {}
  return { written: o.written, lost: Object.values(dropped).reduce((a, b) => a + b, 0), dropped }
}

function toPolicy(p: ResolvedCollector['policy']): PolicyOverrides {
  return p as PolicyOverrides
}

function fingerprint(c: ResolvedCollector): string {
  return JSON.stringify([c.kind, c.enabled, c.policy, c.config])
}

/**
 * The node agent: a CollectorManager with every configured collector this machine supports,
 * outputs (NDJSON to stdout or a rotated file), HTTP endpoints, and hot reload.
 */
export class Agent {
  readonly manager: CollectorManager
  readonly redactor: Redactor
  readonly tail: TailHub
  private outputs: Output[] = []
  private http: AgentHttpServer | undefined
  private scrape: ScrapeListener | undefined
  private pumping: Promise<void> | undefined
  private active = new Map<string, ResolvedCollector>()
  private rateTimer: ReturnType<typeof setInterval> | undefined
  private lastAccepted = new Map<string, number>()
  private rates: Record<string, number> = {}
  private reloading: Promise<unknown> = Promise.resolve()
  readonly dispositions = new Map<string, CollectorDisposition>()
  private readonly lifecycleListeners = new Set<(e: LifecycleEvent) => void>()
  private readonly readinessPolicy: Readiness
  /** `supervisor.events: true`: the lifecycle events as stream events. */
  private readonly supervisorEvents: SupervisorEventsCollector | undefined
  /** Cumulative across reloads: a SIGHUP swaps the chain, never the counts. */
  private readonly processorCounters = new ProcessorCounters()
  /** Undefined for an empty `processors: []` (the pump then skips the stage). */
  private chain: ProcessorChain | undefined
  private reloadState: ReloadStatus = { attempts: 0, successes: 0, lastSuccess: true, lastSuccessAt: Date.now(), lastError: null }

  constructor(
    private config: AgentConfig,
    private readonly options: AgentOptions,
  ) {
    this.manager = new CollectorManager({
      bufferCapacity: config.buffer.capacity,
      overflow: config.buffer.policy,
      sampling: config.buffer.sampling,
      strategy: config.supervisor.strategy,
      defaultPolicy: toPolicy(config.supervisor.policy),
      stopTimeoutMs: config.supervisor.stopTimeoutMs,
      onError: (e) => options.logger.error('internal error', { error: e instanceof Error ? e.message : String(e) }),
    })
    this.tail = new TailHub(config.http.tailQueue, config.http.maxTailClients)
    this.redactor = (options.redactor ?? new Redactor()).addConfig(config)
    this.readinessPolicy = new Readiness(config.readiness)
    this.supervisorEvents = config.supervisor.events ? new SupervisorEventsCollector() : undefined
    this.manager.on('lifecycle', (e) => this.onLifecycle(e))
  }

  /** Supervision facts as they happen (also logged, one line each). */
  onLifecycleEvent(listener: (e: LifecycleEvent) => void): () => void {
    this.lifecycleListeners.add(listener)
    return () => this.lifecycleListeners.delete(listener)
  }

  private onLifecycle(e: LifecycleEvent): void {
    this.readinessPolicy.observe(e, Date.now())
    logLifecycle(this.options.logger, e)
    this.supervisorEvents?.publish(e)
    for (const l of this.lifecycleListeners) l(e)
  }

  /** Whether the agent is ready (/readyz), and why not. */
  readiness(): ReadinessReport {
    const outputs = this.outputsHealth().map((o) => ({ name: o.name, ready: o.health.ready, lastError: o.health.lastError, ...(o.health.state === undefined ? {} : { state: o.health.state }) }))
    return this.readinessPolicy.evaluate(this.manager.health(), this.manager.state, outputs, Date.now())
  }

  /** An output's sink failed under it (stdout closed by its reader): it stops writing and counts what it loses. */
  outputFailed(name: string, error: Error): void {
    for (const o of this.outputs) if (o.name === name && o instanceof StreamOutput) o.fail()
    this.options.logger.debug(`output ${name} failed`, { output: name, error: error.message })
  }

  /** The last reload's outcome (SIGHUP): for /metrics and /api/status. */
  get reloadStatus(): ReloadStatus {
    return this.reloadState
  }

  /** A reload that never reached `reload()` (the new file was rejected). */
  recordReloadFailure(error: string): void {
    this.reloadState = { ...this.reloadState, attempts: this.reloadState.attempts + 1, lastSuccess: false, lastError: error }
  }

  /** Health of outputs that can be unavailable (NATS). */
  outputsHealth(): { readonly name: string; readonly written: number; readonly health: OutputHealth }[] {
    return this.outputs.flatMap((o) => (o.health ? [{ name: o.name, written: o.written, health: o.health() }] : []))
  }

  /** The processor stage's flow (per source: received = delivered + dropped by processor) and each processor's own counters. */
  processorStatistics(): ProcessorStageStatistics {
    return this.chain?.statistics() ?? this.processorCounters.snapshot()
  }

  private buildChain(config: AgentConfig): ProcessorChain | undefined {
    if (config.processors.length === 0) return undefined
    return buildProcessorChain(config.processors, {
      ...(this.options.enricher ? { enricher: this.options.enricher } : {}),
      outputs: this.outputs.map((o) => o.name),
      counters: this.processorCounters,
    })
  }

  get currentConfig(): AgentConfig {
    return this.config
  }

  /** Events per second per collector over the last second. */
  eventRates(): Readonly<Record<string, number>> {
    return this.rates
  }

  async start(): Promise<void> {
    const log = this.options.logger
    if (this.config.outputs.stdout) this.outputs.push(new StreamOutput('stdout', this.options.stdout ?? process.stdout))
    const file = this.config.outputs.file
    if (file) this.outputs.push(new RotatingFileOutput(file.path, file.maxBytes, file.maxFiles, (m) => log.error(`output file: ${m} (events dropped as write_error; retrying)`, { output: 'file' })))
    if (this.config.outputs.nats) {
      // Loaded only when configured: the NATS client costs about 13 MB of RSS.
      const { NatsOutput } = await import('../outputs/nats/output.js')
      const nats = new NatsOutput(this.config.outputs.nats, { node: this.config.node, logger: log })
      // Connects in the background: NATS being down must not keep the agent (and /readyz) from starting.
      nats.start()
      this.outputs.push(nats)
    }

    this.chain = this.buildChain(this.config)

    // First registered: it starts before and stops after the collectors it reports on.
    if (this.supervisorEvents) this.manager.addCollector(SUPERVISOR_EVENTS_SOURCE, this.supervisorEvents, { restart: 'permanent' })
    for (const c of this.config.collectors) await this.register(c)
    // Consume before starting so nothing waits on an absent reader.
    this.pumping = this.pump()
    if (this.config.http.enabled) {
      const registry = createMetrics({
        manager: () => this.manager,
        outputs: () => this.outputs,
        tailDropped: () => this.tail.dropped,
        enrichment: () => this.options.enricher?.counts(),
        processors: () => this.processorStatistics(),
        reload: () => this.reloadState,
      })
      this.http = new AgentHttpServer(this, registry, this.config.http, log)
      await this.http.listen()
      log.info(`http: listening on ${this.http.url}`, { url: this.http.url })
      const scrape = this.config.http.scrape
      if (scrape) {
        this.scrape = new ScrapeListener(registry, () => this.readiness(), { ...scrape, maxConnections: this.config.http.maxConnections }, this.redactor.redact)
        await this.scrape.listen()
        log.info(`http: scrape listener (${SCRAPE_PATHS.join(', ')}) on ${this.scrape.url}`, { url: this.scrape.url })
      }
    }
    this.rateTimer = setInterval(() => this.sampleRates(), 1000)
    this.rateTimer.unref()
    await this.manager.start().catch(() => {})
    for (const name of this.active.keys()) this.reportDisposition(name)
  }

  private async register(c: ResolvedCollector): Promise<void> {
    const log = this.options.logger
    if (c.enabled === false) {
      this.dispositions.set(c.name, { name: c.name, kind: c.kind, outcome: 'disabled' })
      log.info(`${c.name}: disabled in config`, { collector: c.name })
      return
    }
    const kind = this.options.kinds.get(c.kind)
    if (!kind) {
      this.dispositions.set(c.name, { name: c.name, kind: c.kind, outcome: 'skipped', reason: `unknown kind ${c.kind}` })
      log.warn(`${c.name}: skipped (unknown collector kind ${c.kind})`, { collector: c.name })
      return
    }
    if (c.enabled === 'auto') {
      const d = await kind.detect(c.config).catch((e: unknown) => ({ supported: false, reason: `detection failed: ${String(e)}` }))
      if (!d.supported) {
        this.dispositions.set(c.name, { name: c.name, kind: c.kind, outcome: 'skipped', reason: d.reason })
        log.info(`${c.name}: skipped (${d.reason})`, { collector: c.name, reason: d.reason })
        return
      }
    }
    this.manager.addCollector(c.name, await kind.create(c.config), toPolicy(c.policy))
    this.active.set(c.name, c)
  }

  private reportDisposition(name: string): void {
    const c = this.active.get(name)
    if (!c) return
    const h = this.manager.health().collectors[name]
    const log = this.options.logger
    if (h?.state === 'running') {
      this.dispositions.set(name, { name, kind: c.kind, outcome: 'running' })
      log.info(`${name}: running`, { collector: name })
    } else {
      const reason = h?.lastError ?? h?.state ?? 'unknown'
      this.dispositions.set(name, { name, kind: c.kind, outcome: 'failed', reason })
      log.warn(`${name}: ${h?.state ?? 'failed'} (${reason})`, { collector: name, status: h?.status })
    }
  }

  /**
   * Merged batches through the processor stage to every output (awaiting them: backpressure) and
   * to the live tail. Each batch is wrapped once in its shared serialised form: whoever needs
   * NDJSON first makes it, everyone else reuses it. The chain is read per batch, so a reload's new
   * chain applies from the next batch on.
   */
  private async pump(): Promise<void> {
    for await (const merged of encodedBatchesOfManager(this.manager)) {
      const chain = this.chain
      const result = chain ? chain.runBatch(merged) : { events: merged }
      if (result.events.length === 0) continue
      const batch = NdjsonBatch.from(result.events)
      const routes = result.routes
      for (const o of this.outputs) {
        let mine = batch
        if (routes) {
          const events = routes.get(o.name)
          if (!events || events.length === 0) continue
          // Shared when the output gets everything (the common case): serialised once.
          mine = events.length === batch.length ? batch : NdjsonBatch.from(events)
        }
        const p = o.write(mine)
        if (p) await p
      }
      this.tail.publish(batch)
      this.http?.observe(batch)
    }
  }

  private sampleRates(): void {
    const stats = this.manager.statistics().collectors
    const next: Record<string, number> = {}
    for (const [name, c] of Object.entries(stats)) {
      next[name] = Math.max(0, c.accepted - (this.lastAccepted.get(name) ?? c.accepted))
      this.lastAccepted.set(name, c.accepted)
    }
    this.rates = next
  }

  /**
   * Apply a new configuration: added collectors start, removed ones stop, changed ones restart,
   * untouched ones keep running (their events keep flowing). Settings that need a restart of the
   * agent (buffer, http, outputs) are reported and left as they are.
   */
  reload(next: AgentConfig): Promise<ReloadResult> {
    // One at a time, each diffed against what the previous one left: two overlapping reloads
    // would both see the old config and undo each other (a removed collector brought back).
    const run = this.reloading.then(() => this.applyReload(next))
    this.reloading = run.catch(() => {})
    return run
  }

  private async applyReload(next: AgentConfig): Promise<ReloadResult> {
    const log = this.options.logger
    // Checked before anything changes: a route may only name the outputs that run now (a new
    // output needs a restart), else its events would be counted delivered and written nowhere.
    const processorsChanged = JSON.stringify(this.config.processors) !== JSON.stringify(next.processors)
    let chain = this.chain
    if (processorsChanged) {
      const problems = processorProblems(next.processors, this.outputs.map((o) => o.name))
      if (problems.length > 0) throw new Error(`processors not applied (the running outputs are ${this.outputs.map((o) => o.name).join(', ')}): ${problems.join('; ')}`)
      chain = this.buildChain(next)
    }
    this.redactor.addConfig(next)
    const needsRestart: string[] = []
    for (const key of ['buffer', 'http', 'outputs', 'supervisor'] as const) {
      if (JSON.stringify(this.config[key]) !== JSON.stringify(next[key])) needsRestart.push(key)
    }
    const prev = new Map(this.config.collectors.map((c) => [c.name, c]))
    const want = new Map(next.collectors.map((c) => [c.name, c]))
    const added: string[] = []
    const removed: string[] = []
    const restarted: string[] = []
    const unchanged: string[] = []
    for (const [name, c] of prev) {
      const n = want.get(name)
      if (!n) {
        if (this.active.has(name)) await this.manager.removeCollector(name)
        this.active.delete(name)
        this.dispositions.delete(name)
        removed.push(name)
      } else if (fingerprint(n) !== fingerprint(c)) {
        if (this.active.has(name)) await this.manager.removeCollector(name)
        this.active.delete(name)
        await this.register(n)
        restarted.push(name)
      } else unchanged.push(name)
    }
    for (const [name, c] of want) {
      if (prev.has(name)) continue
      await this.register(c)
      added.push(name)
    }
    // Processors change without touching a collector: the next batch goes through the new chain.
    this.chain = chain
    this.config = { ...this.config, collectors: next.collectors, log: next.log, readiness: next.readiness, processors: next.processors }
    this.readinessPolicy.setPolicy(next.readiness)
    // Rotated certificates and credentials (same paths, new contents) take effect now.
    for (const o of this.outputs) await o.reconnect?.()
    this.reloadState = { attempts: this.reloadState.attempts + 1, successes: this.reloadState.successes + 1, lastSuccess: true, lastSuccessAt: Date.now(), lastError: null }
    log.info('config reloaded', { event: 'config.reload', result: 'ok', added, removed, restarted, unchanged, needsRestart, processors: processorsChanged ? 'applied' : 'unchanged' })
    if (needsRestart.length > 0) log.warn(`config: changes to ${needsRestart.join(', ')} take effect after a restart of the agent`)
    return { added, removed, restarted, unchanged, needsRestart }
  }

  /** Stop collectors, drain to the outputs, close everything. */
  async stop(): Promise<void> {
    if (this.rateTimer) clearInterval(this.rateTimer)
    // A reload in progress finishes first (each of its steps is bounded by a stop timeout).
    await this.reloading
    const summary = await this.manager.stop()
    // An output that cannot deliver (NATS down) would hold the pump forever; close() bounds it.
    for (const o of this.outputs) o.release?.()
    await this.pumping
    // Bounded: what an output cannot write in time is counted (`shutdown`), never silently lost.
    await Promise.all(this.outputs.map((o) => o.close(this.config.outputs.flushTimeoutMs)))
    this.tail.closeAll()
    await this.http?.close()
    await this.scrape?.close()
    const s = this.manager.statistics()
    this.options.logger.info('stopped', {
      totalEvents: s.totalEvents,
      delivered: s.deliveredEvents,
      dropped: s.droppedEvents.total,
      drained: summary.drained,
      // Per output: delivered to it = written + lost; lost by reason (a stalled or closed stdout).
      outputs: Object.fromEntries(this.outputs.map((o) => [o.name, outputTotals(o)])),
    })
  }

  get httpUrl(): string | undefined {
    return this.http?.url
  }

  get scrapeUrl(): string | undefined {
    return this.scrape?.url
  }
}
