import type { TapioEvent } from '../../events/event.js'
import type { Processor } from '../processor.js'
import { BUILTIN_CHAINS } from './chains.js'
import { type ChainRule, CorrelationEngine } from './engine.js'

export interface CorrelateOptions {
  /** Processor name: the `source` of the correlation events it emits. Default `correlate`. */
  readonly name?: string
  /** Chains to run: built-in names or your own rules. Default: every built-in chain. */
  readonly chains?: readonly (string | ChainRule)[]
  /** How far apart (event time) members of one chain instance may be, and how long an idle instance is kept. Default 120000. */
  readonly windowMs?: number
  /** Keys tracked at most over all open instances. Default 10000. */
  readonly maxKeys?: number
}

export const CORRELATE_DEFAULTS = { windowMs: 120_000, maxKeys: 10_000 } as const

/** A built-in chain by name, or a RangeError naming the known ones. */
export function builtinChain(name: string): ChainRule {
  const rule = BUILTIN_CHAINS[name]
  if (!rule) throw new RangeError(`unknown chain ${JSON.stringify(name)} (built-in: ${Object.keys(BUILTIN_CHAINS).join(', ')})`)
  return rule
}

/**
 * Links events of one workload across collectors (kernel, Kubernetes, network, systemd) and
 * inserts a `tapio.correlation.incident` right after the event that makes a chain instance an
 * incident, then a `tapio.correlation.updated` after each later member. Every event passes on
 * unchanged; the added ones are counted as emitted under this processor's name as their source.
 */
export function correlateProcessor(o: CorrelateOptions = {}): Processor {
  const name = o.name ?? 'correlate'
  const rules = (o.chains ?? Object.keys(BUILTIN_CHAINS)).map((c) => (typeof c === 'string' ? builtinChain(c) : c))
  const engine = new CorrelationEngine({
    rules,
    windowMs: o.windowMs ?? CORRELATE_DEFAULTS.windowMs,
    maxKeys: o.maxKeys ?? CORRELATE_DEFAULTS.maxKeys,
    source: name,
  })
  return {
    name,
    type: 'correlate',
    process(batch, ctx) {
      const now = ctx.now
      engine.expire(now)
      let out: TapioEvent[] | undefined
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i] as TapioEvent
        const emitted = engine.takes(e.type) ? engine.observe(e, now) : undefined
        if (emitted === undefined) {
          out?.push(e)
          continue
        }
        out ??= batch.slice(0, i) as TapioEvent[]
        out.push(e)
        for (const x of emitted) {
          ctx.emit(x)
          out.push(x)
        }
      }
      return out ?? batch
    },
    statistics: () => ({ ...engine.statistics() }),
  }
}
