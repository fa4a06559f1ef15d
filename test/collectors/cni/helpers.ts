import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import type { Collector } from '../../../src/core/collector.js'
import type { EventInput } from '../../../src/events/event.js'

export function suffix(): string {
  return randomBytes(3).toString('hex')
}

/** Runs `ip` with arguments; throws with its stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export function ipJson<T>(...args: string[]): T {
  const out = ip('-j', ...args).trim()
  return (out === '' ? [] : JSON.parse(out)) as T
}

/** Links and namespaces a test created, removed in afterAll/finally even when the test failed. */
export class KernelObjects {
  private readonly links: string[] = []
  private readonly namespaces: string[] = []

  link(name: string): string {
    this.links.push(name)
    return name
  }

  netns(name: string): string {
    this.namespaces.push(name)
    return name
  }

  cleanup(): string[] {
    const errors: string[] = []
    const present = new Set(ipJson<{ ifname?: string }[]>('link', 'show').map((x) => x.ifname))
    for (const l of this.links.splice(0).reverse()) {
      if (present.has(l)) {
        try {
          ip('link', 'del', l)
        } catch (e) {
          errors.push(String(e))
        }
      }
    }
    for (const n of this.namespaces.splice(0).reverse()) {
      try {
        ip('netns', 'del', n)
      } catch {
        // Already deleted by the test.
      }
    }
    return errors
  }
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length
}

/** Consumes a collector's events() in the background and lets tests wait for events. */
export class Recorder {
  readonly events: EventInput[] = []
  readonly batches: number[] = []
  readonly done: Promise<void>
  error: unknown

  constructor(collector: Collector) {
    this.done = (async () => {
      try {
        for await (const item of collector.events()) {
          const batch = Array.isArray(item) ? item : [item as EventInput]
          this.batches.push(batch.length)
          this.events.push(...batch)
        }
      } catch (e) {
        this.error = e
      }
    })()
  }

  /** The first event at or after `from` matching `pred`; fails with what was seen after `timeoutMs`. */
  async waitFor(pred: (e: EventInput) => boolean, what: string, from = 0, timeoutMs = 20_000): Promise<{ event: EventInput; index: number }> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      for (let i = from; i < this.events.length; i++) {
        const e = this.events[i] as EventInput
        if (pred(e)) return { event: e, index: i }
      }
      if (this.error) throw new Error(`events() failed while waiting for ${what}: ${String(this.error)}`)
      if (Date.now() > deadline) {
        const seen = this.events.slice(from).map((e) => `${e.type} ${JSON.stringify(e.data)}`)
        throw new Error(`timed out waiting for ${what}; seen since ${from}:\n${seen.join('\n')}`)
      }
      await sleep(20)
    }
  }

  of(type: string, pred: (data: Record<string, unknown>) => boolean = () => true): EventInput[] {
    return this.events.filter((e) => e.type === type && pred((e.data ?? {}) as Record<string, unknown>))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export function data(e: EventInput): Record<string, unknown> {
  return (e.data ?? {}) as Record<string, unknown>
}

/** Poll `check` until it returns true (generous timeout; the machine is shared). */
export async function eventually(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}
