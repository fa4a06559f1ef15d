import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventInput } from '../../../src/events/event.js'
import { KubernetesCollector } from '../../../src/collectors/kubernetes/index.js'
import { FakeApiServer, type JsonObject, kubeconfigYaml } from './fake-apiserver.js'

const fixturesDir = new URL('./fixtures/', import.meta.url)

/** A real API object from fixtures/, as parsed JSON (fresh copy each call). */
export function fixture(name: 'pod' | 'node' | 'event' | 'deployment' | 'replicaset'): JsonObject {
  return JSON.parse(readFileSync(new URL(`${name}.json`, fixturesDir), 'utf8')) as JsonObject
}

/** A fixture renamed, with server-owned metadata removed (so the fake server assigns it). */
export function fresh(name: Parameters<typeof fixture>[0], objectName: string, namespace?: string): JsonObject {
  const o = fixture(name)
  const m = o.metadata as JsonObject
  m.name = objectName
  if (namespace !== undefined) m.namespace = namespace
  delete m.uid
  delete m.resourceVersion
  return o
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Fast retry settings so fault tests finish quickly; everything else at defaults. */
export const FAST = {
  backoff: { initialMs: 50, maxMs: 400, jitter: 0.2 },
  relistMinIntervalMs: 100,
  minHealthyWatchMs: 300,
} as const

export interface Harness {
  readonly server: FakeApiServer
  readonly kubeconfigPath: string
  collector: KubernetesCollector
  readonly events: EventInput[]
  /** Batches as yielded by events(). */
  batches: number
  /** Set when the events() loop threw. */
  consumerError: unknown
  consumerDone: Promise<void>
  startCollector(config?: Record<string, unknown>): Promise<void>
  stopCollector(): Promise<void>
  close(): Promise<void>
  of(type: string, name?: string): EventInput[]
}

export async function createHarness(): Promise<Harness> {
  const server = new FakeApiServer()
  await server.start()
  const dir = mkdtempSync(join(tmpdir(), 'k8s-collector-'))
  const kubeconfigPath = join(dir, 'config')
  writeFileSync(kubeconfigPath, kubeconfigYaml(server.url))
  const h: Harness = {
    server,
    kubeconfigPath,
    collector: undefined as unknown as KubernetesCollector,
    events: [],
    batches: 0,
    consumerError: undefined,
    consumerDone: Promise.resolve(),
    async startCollector(config = {}) {
      h.collector = new KubernetesCollector({ kubeconfig: kubeconfigPath, context: 'fake', ...FAST, ...config })
      await h.collector.start(new AbortController().signal)
      const iterable = h.collector.events()
      h.consumerDone = (async () => {
        try {
          for await (const item of iterable) {
            h.batches += 1
            if (Array.isArray(item)) h.events.push(...(item as EventInput[]))
            else h.events.push(item as EventInput)
          }
        } catch (err) {
          h.consumerError = err
        }
      })()
    },
    async stopCollector() {
      await h.collector?.stop()
      await h.consumerDone
    },
    async close() {
      try {
        await h.stopCollector()
      } finally {
        await server.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    },
    of(type, name) {
      return h.events.filter(
        (e) => e.type === type && (name === undefined || (e.data as { name?: unknown } | undefined)?.name === name),
      )
    },
  }
  return h
}

/** `type uid resourceVersion` of object-change events, to count deliveries per change. */
export function changeKeys(events: readonly EventInput[]): string[] {
  return events
    .filter((e) => /^k8s\.[a-z]+\.(added|updated|deleted)$/.test(e.type))
    .map((e) => {
      const d = e.data as { uid: string; resourceVersion: string }
      return `${e.type} ${d.uid} ${d.resourceVersion}`
    })
}
