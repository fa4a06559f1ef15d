import { setTimeout as sleep } from 'node:timers/promises'
import { type Collector, type CollectorFactory, type CollectorHealth, CollectorStateError } from '../../core/collector.js'
import type { SourceStatistics } from '../../core/statistics.js'
import { type EventInput, makeEvent } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import { parseSyntheticConfig, SYNTHETIC_DEFAULTS, type SyntheticConfig } from './config.js'
import { delay } from '../../core/delay.js'
import { type Clock, systemClock } from '../../core/clock.js'
import './events.js'

export interface SyntheticCollectorOptions {
  /** Paces the batches at `rate` (tests drive a ManualClock). Default: the system clock. */
  readonly clock?: Clock
}

/** What the instances of one registration share: how often it was started (for `faultyStarts`). */
export interface SyntheticSharedState {
  starts: number
}

/**
 * A configurable event generator for tests, examples and benchmarks, with failure injection:
 * fail or hang at start, fail after N events, hang in stop.
 */
export class SyntheticCollector implements Collector {
  private readonly cfg: Required<Pick<SyntheticConfig, 'rate' | 'batchSize' | 'type' | 'severity'>> & SyntheticConfig
  private running = false
  private starting = false
  private started = false
  private generation = 0
  private emitted = 0
  private wake: (() => void) | undefined
  private stopHang: AbortController | undefined

  private readonly clock: Clock

  constructor(
    config: SyntheticConfig | Record<string, unknown> = {},
    private readonly shared: SyntheticSharedState = { starts: 0 },
    options: SyntheticCollectorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock
    const parsed = parseSyntheticConfig(config)
    this.cfg = { ...SYNTHETIC_DEFAULTS, ...parsed }
  }

  private faulty(): boolean {
    return this.cfg.faultyStarts === undefined || this.generation <= this.cfg.faultyStarts
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.running || this.starting) throw new CollectorStateError('synthetic collector: already started')
    signal.throwIfAborted()
    this.starting = true
    try {
      await this.begin(signal)
    } finally {
      this.starting = false
    }
  }

  private async begin(signal: AbortSignal): Promise<void> {
    this.shared.starts += 1
    this.generation = this.shared.starts
    if (this.cfg.hangInStart && this.faulty()) {
      // Hang until aborted (the supervisor's start timeout aborts us).
      await new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new Error('start aborted'))
        signal.addEventListener('abort', () => reject(new Error('start aborted')), { once: true })
      })
    }
    if (this.cfg.failAtStart && this.faulty()) throw new Error('synthetic: injected start failure')
    this.running = true
    this.started = true
  }

  async stop(): Promise<void> {
    const wasRunning = this.running
    this.running = false
    this.wake?.()
    if (this.cfg.hangInStop && wasRunning && this.faulty()) {
      this.stopHang = new AbortController()
      // Hangs until the process ends it: the supervisor must force-stop us. Unref'd, so it never
      // keeps the process alive.
      await sleep(2 ** 31 - 1, undefined, { signal: this.stopHang.signal, ref: false }).catch(() => {})
    }
  }

  health(): CollectorHealth {
    return { status: 'ok', details: { generation: this.generation, emitted: this.emitted } }
  }

  /** Events are made as the consumer pulls them: nothing is ever queued or dropped here. */
  statistics(): SourceStatistics {
    return { produced: this.emitted, dropped: {}, queued: 0, counters: {}, gauges: { generation: this.generation } }
  }

  events(): AsyncIterable<readonly EventInput[]> {
    if (!this.started) throw new CollectorStateError('synthetic collector: events() before a successful start()')
    return this.generate()
  }

  private async *generate(): AsyncGenerator<readonly EventInput[]> {
    const { rate, batchSize, total, type, severity, reuseBatch } = this.cfg
    const failAfter = this.faulty() ? this.cfg.failAfter : undefined
    const generation = this.generation
    let seq = 0
    const intervalMs = rate > 0 ? (batchSize / rate) * 1000 : 0
    let next = this.clock.now()
    let sinceYield = 0
    const template: EventInput[] | undefined = reuseBatch
      ? Array.from({ length: batchSize }, (_, i) => makeEvent('', type, { seq: i, generation }, { severity }))
      : undefined
    while (this.running) {
      const remaining = total === undefined ? batchSize : Math.min(batchSize, total - seq)
      if (remaining <= 0) return
      const n = failAfter === undefined ? remaining : Math.min(remaining, failAfter - seq)
      if (n <= 0) throw new Error(`synthetic: injected failure after ${failAfter} events`)
      let batch: EventInput[]
      if (template && n === template.length) {
        batch = template
      } else {
        const ts = nowNs()
        batch = new Array(n)
        for (let i = 0; i < n; i++) {
          // Slots for what the pump stamps (id, source): it fills them in place, so the event keeps
          // its shape instead of growing a property store per event; the keys keep their order.
          batch[i] = { type, severity, timestamp: ts, data: { seq: seq + i, generation }, id: undefined, source: undefined }
        }
      }
      seq += n
      this.emitted += n
      yield batch
      if (intervalMs > 0) {
        next += intervalMs
        const wait = next - this.clock.now()
        if (wait > 0) await this.pause(wait)
      } else if (++sinceYield >= 16) {
        // Let timers and I/O run: a tight async loop only ever yields to microtasks.
        sinceYield = 0
        await new Promise((r) => setImmediate(r))
      }
    }
  }

  /** Waits for the next batch's time; stop() cuts it short. */
  private async pause(ms: number): Promise<void> {
    const cut = new AbortController()
    this.wake = () => cut.abort()
    await delay(ms, cut.signal, this.clock)
    this.wake = undefined
  }
}

export function createSyntheticCollector(config?: SyntheticConfig | Record<string, unknown>, options: SyntheticCollectorOptions = {}): SyntheticCollector {
  return new SyntheticCollector(config, undefined, options)
}

/** A fresh instance per start; `faultyStarts` counts the starts of the whole registration. */
export function syntheticCollectorFactory(config: SyntheticConfig | Record<string, unknown> = {}, options: SyntheticCollectorOptions = {}): CollectorFactory {
  const parsed = parseSyntheticConfig(config)
  const shared: SyntheticSharedState = { starts: 0 }
  return () => new SyntheticCollector(parsed, shared, options)
}
