import type { Clock } from '../../src/core/clock.js'
import { delay } from '../../src/core/delay.js'
import type { SourceStatistics } from '../../src/core/statistics.js'
import type { Collector, EventInput } from '../../src/index.js'

/** What a driven collector does when started or stopped; times are on the test's clock. */
export interface DrivenBehaviour {
  /** Start takes this long (virtual ms); `Infinity`: hangs until aborted. */
  startMs?: number
  /** Start fails (after `startMs`). */
  failStart?: boolean
  /** Stop takes this long (virtual ms); `Infinity`: never returns. */
  stopMs?: number
  /** stop() throws. */
  throwInStop?: boolean
}

export interface Happening {
  readonly at: number
  readonly what: 'start' | 'running' | 'stop' | 'start-failed'
  readonly name: string
  /** Which registration (a name removed and added again is a new one). */
  readonly reg: number
  readonly instance: number
}

let registrations = 0

/**
 * A collector whose instances a test drives on a ManualClock: records when each instance starts,
 * runs and stops, emits on request, crashes on request. `behaviour(n)` chooses instance n's conduct.
 */
export class Driven {
  readonly reg = ++registrations
  instances = 0
  /** Events its instances' sources yielded (handed to the manager). */
  yielded = 0
  live = 0
  maxLive = 0
  seq = 0
  current: DrivenInstance | undefined
  constructor(
    readonly name: string,
    readonly clock: Clock,
    readonly log: Happening[],
    readonly behaviour: (instance: number) => DrivenBehaviour = () => ({}),
  ) {}
  factory = (): Collector => new DrivenInstance(this, ++this.instances)
  record(what: Happening['what'], instance: number): void {
    this.log.push({ at: this.clock.now(), what, name: this.name, reg: this.reg, instance })
  }
}

export class DrivenInstance implements Collector {
  private started = false
  private ended = false
  private crashed = false
  private wake: (() => void) | undefined
  private pending: EventInput[][] = []
  private produced = 0
  constructor(
    private readonly d: Driven,
    readonly n: number,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    const b = this.d.behaviour(this.n)
    this.d.record('start', this.n)
    if (b.startMs === Infinity) {
      await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))
    } else if ((b.startMs ?? 0) > 0) {
      if (!(await delay(b.startMs ?? 0, signal, this.d.clock))) throw new Error('aborted')
    }
    if (b.failStart) {
      this.d.record('start-failed', this.n)
      throw new Error(`driven ${this.d.name}#${this.n}: start failure`)
    }
    this.started = true
    this.d.live += 1
    this.d.maxLive = Math.max(this.d.maxLive, this.d.live)
    this.d.current = this
    this.d.record('running', this.n)
  }

  async stop(): Promise<void> {
    const b = this.d.behaviour(this.n)
    if (this.started) {
      this.started = false
      this.d.live -= 1
      this.d.record('stop', this.n)
    }
    if (this.d.current === this) this.d.current = undefined
    this.ended = true
    this.wake?.()
    if (b.throwInStop) throw new Error(`driven ${this.d.name}#${this.n}: stop failure`)
    if (b.stopMs === Infinity) await new Promise(() => {})
    else if ((b.stopMs ?? 0) > 0) await delay(b.stopMs ?? 0, undefined, this.d.clock)
  }

  emit(n: number): void {
    if (!this.started || this.ended) return
    const batch: EventInput[] = []
    for (let i = 0; i < n; i++) batch.push({ type: 'driven.tick', data: { seq: this.d.seq++, reg: this.d.reg } })
    this.produced += n
    this.pending.push(batch)
    this.wake?.()
  }

  /** Source accounting (the collector contract): produced = handed out + queued here. */
  statistics(): SourceStatistics {
    let queued = 0
    for (const b of this.pending) queued += b.length
    return { produced: this.produced, dropped: {}, queued, counters: {} }
  }

  /** The source ends normally (a normal exit). */
  finish(): void {
    this.ended = true
    this.wake?.()
  }

  crash(): void {
    this.crashed = true
    this.wake?.()
  }

  async *events(): AsyncGenerator<EventInput[]> {
    for (;;) {
      while (this.pending.length > 0) {
        const batch = this.pending.shift() as EventInput[]
        this.d.yielded += batch.length
        yield batch
      }
      if (this.crashed) throw new Error(`driven ${this.d.name}#${this.n}: crashed`)
      if (this.ended) return
      await new Promise<void>((r) => {
        this.wake = r
      })
      this.wake = undefined
    }
  }
}
