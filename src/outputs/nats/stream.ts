import { DiscardPolicy, type JetStreamManager, RetentionPolicy, type StreamConfig, StorageType } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import type { NatsStreamConfig } from './config.js'

export interface EnsuredStream {
  readonly created: boolean
  /** Ways in which an existing stream differs from the configuration (it is left as it is). */
  readonly differences: readonly string[]
}

/** Does `have` (a stream subject, maybe with wildcards) receive everything published under `want.>`? */
export function subjectCovers(have: string, wantPrefix: string): boolean {
  const h = have.split('.')
  const w = wantPrefix.split('.')
  for (let i = 0; i < h.length; i++) {
    const t = h[i]
    if (t === '>') return true
    if (i >= w.length) return false
    if (t !== '*' && t !== w[i]) return false
  }
  return false
}

function desired(cfg: NatsStreamConfig, subjectPrefix: string): Partial<StreamConfig> & { name: string } {
  return {
    name: cfg.name,
    subjects: [`${subjectPrefix}.>`],
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    storage: cfg.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: cfg.replicas,
    max_age: nanos(cfg.maxAgeMs),
    max_bytes: cfg.maxBytes,
    duplicate_window: nanos(cfg.duplicateWindowMs),
  }
}

/**
 * Create the events stream, or verify the one that exists. An existing stream is never changed:
 * with many agents publishing into it, the operator's settings win over any one agent's config;
 * differences are reported so they show in the agent's log.
 */
export async function ensureStream(jsm: JetStreamManager, cfg: NatsStreamConfig, subjectPrefix: string): Promise<EnsuredStream> {
  const want = desired(cfg, subjectPrefix)
  const info = await jsm.streams.info(cfg.name).catch((e: unknown) => {
    if (e instanceof Error && e.name === 'StreamNotFoundError') return undefined
    throw e
  })
  if (!info) {
    if (!cfg.create) throw new Error(`stream ${cfg.name} does not exist (stream.create is false)`)
    try {
      await jsm.streams.add(want)
      return { created: true, differences: [] }
    } catch (e) {
      // Another agent may have created it a moment ago: verify that one instead.
      const again = await jsm.streams.info(cfg.name).catch(() => undefined)
      if (!again) throw e
      return { created: false, differences: compare(again.config, want, subjectPrefix) }
    }
  }
  const differences = compare(info.config, want, subjectPrefix)
  if (!info.config.subjects?.some((s) => subjectCovers(s, subjectPrefix)))
    throw new Error(`stream ${cfg.name} exists but does not take subjects ${subjectPrefix}.> (it has ${JSON.stringify(info.config.subjects ?? [])})`)
  return { created: false, differences }
}

function compare(have: StreamConfig, want: Partial<StreamConfig>, subjectPrefix: string): string[] {
  const out: string[] = []
  if (!have.subjects?.some((s) => subjectCovers(s, subjectPrefix))) out.push(`subjects ${JSON.stringify(have.subjects)} do not cover ${subjectPrefix}.>`)
  for (const k of ['storage', 'num_replicas', 'max_age', 'max_bytes', 'duplicate_window'] as const) {
    if (want[k] !== undefined && have[k] !== want[k]) out.push(`${k} is ${String(have[k])}, configured ${String(want[k])}`)
  }
  return out
}
