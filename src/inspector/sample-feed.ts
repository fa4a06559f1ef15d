import type { ServerResponse } from 'node:http'
import type { TapioEvent } from '../events/event.js'
import { EventSampler } from './sampler.js'
import { type SseClient, SseClients, type SseCounts, sseFrame } from './sse-clients.js'

const PERIOD_MS = 1000

/**
 * `/api/inspect/sample?collector=<name>`: a live sample of one collector's newest events, once a
 * second, for the page's "events" toggle on a card. Opt-in per card (nothing is sampled while no
 * one watches), bounded (a few previews per second per watched collector, the same client bounds
 * as the feed), and fed from batches the agent already consumes (`observe`).
 */
export class SampleFeed {
  readonly sampler = new EventSampler()
  private readonly clients = new SseClients()
  private readonly watchers = new Map<string, Set<SseClient>>()
  private readonly sourceOf = new WeakMap<SseClient, string>()
  private readonly latest = new Map<string, string>()
  private readonly timer: ReturnType<typeof setInterval>

  constructor(private readonly redact?: (text: string) => string) {
    this.clients.onDrain = (c) => {
      const frame = this.latest.get(this.sourceOf.get(c) ?? '')
      if (frame) c.send(frame, 'latest')
    }
    this.timer = setInterval(() => this.tick(), PERIOD_MS)
    this.timer.unref()
  }

  observe(batch: readonly TapioEvent[]): void {
    this.sampler.observe(batch)
  }

  add(res: ServerResponse, collector: string): void {
    const client = this.clients.open(res, 'retry: 1000\n\n')
    if (!client) return
    const stop = this.sampler.watch(collector)
    let set = this.watchers.get(collector)
    if (!set) {
      set = new Set()
      this.watchers.set(collector, set)
    }
    set.add(client)
    this.sourceOf.set(client, collector)
    res.on('close', () => {
      stop()
      const s = this.watchers.get(collector)
      s?.delete(client)
      if (s?.size === 0) {
        this.watchers.delete(collector)
        this.latest.delete(collector)
      }
    })
    client.send(this.frame(collector), 'latest')
  }

  private frame(collector: string): string {
    const { events, fresh } = this.sampler.take(collector)
    let frame = sseFrame('sample', { collector, time: new Date().toISOString(), fresh, events })
    if (this.redact) frame = this.redact(frame)
    this.latest.set(collector, frame)
    return frame
  }

  private tick(): void {
    this.clients.sweep()
    for (const [collector, set] of this.watchers) {
      const frame = this.frame(collector)
      for (const c of set) c.send(frame, 'latest')
    }
  }

  counts(): SseCounts {
    return this.clients.counts()
  }

  close(): void {
    clearInterval(this.timer)
    this.clients.closeAll()
  }
}
