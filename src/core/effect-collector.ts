import type * as Effect from 'effect/Effect'
import type * as Scope from 'effect/Scope'
import type * as Stream from 'effect/Stream'
import { type Collector, type CollectorHealth, type CollectorOutput, CollectorStateError } from './collector.js'
import { lazyModule } from './lazy-module.js'
import type { SourceStatistics } from './statistics.js'

/** An Effect-native collector: acquire resources in a scope, expose events as a Stream. */
export interface EffectCollectorSpec<E> {
  /** Runs at start; resources it adds to the scope are released at stop. */
  readonly acquire?: Effect.Effect<void, E, Scope.Scope>
  readonly events: Stream.Stream<CollectorOutput, E>
  readonly health?: () => CollectorHealth
}

// Loaded by the first `effectCollector(spec)`, not with the package (lazy-module.ts); whoever
// builds a spec has loaded Effect already.
const effectModule = lazyModule('effect/Effect')
const exitModule = lazyModule('effect/Exit')
const scopeModule = lazyModule('effect/Scope')
const streamModule = lazyModule('effect/Stream')

/**
 * Adapt an Effect-native collector to the plain Collector contract (docs/collectors/contract.md):
 * start twice and `events()` before start are refused, stop twice waits for the one release.
 * The stream is pulled as the consumer reads, so nothing is queued or dropped here: `produced`
 * counts what was handed out.
 */
export function effectCollector<E>(spec: EffectCollectorSpec<E>): Collector {
  const Effect = effectModule()
  const Exit = exitModule()
  const Scope = scopeModule()
  const Stream = streamModule()
  let scope: Scope.Closeable | undefined
  let started = false
  let stopping: Promise<void> | undefined
  let stopped: Promise<void> = Promise.resolve()
  let signalStopped: () => void = () => {}
  let produced = 0
  const count = (item: CollectorOutput): CollectorOutput => {
    produced += Array.isArray(item) ? item.length : 1
    return item
  }
  const release = async (s: Scope.Closeable): Promise<void> => {
    await Effect.runPromise(Scope.close(s, Exit.void))
  }
  return {
    async start(signal) {
      if (scope) throw new CollectorStateError('effect collector: already started')
      signal.throwIfAborted()
      if (stopping) await stopping
      const s = Effect.runSync(Scope.make())
      scope = s
      stopped = new Promise<void>((resolve) => {
        signalStopped = resolve
      })
      try {
        if (spec.acquire) await Effect.runPromise(Scope.provide(spec.acquire, s), { signal })
      } catch (e) {
        // A failed or aborted start releases what it acquired and leaves the collector startable.
        scope = undefined
        signalStopped()
        await release(s)
        throw e
      }
      started = true
    },
    stop() {
      const s = scope
      scope = undefined
      signalStopped()
      if (s) {
        stopping = release(s).finally(() => {
          stopping = undefined
        })
      }
      return stopping ?? Promise.resolve()
    },
    events() {
      if (!started) throw new CollectorStateError('effect collector: events() before a successful start()')
      // The stream ends when the collector is stopped, so the supervisor's drain completes.
      const untilStopped = stopped
      return Stream.toAsyncIterable(
        spec.events.pipe(
          Stream.map(count),
          Stream.interruptWhen(Effect.promise(() => untilStopped)),
          Stream.mapError((e) => (e instanceof Error ? e : new Error(String(e)))),
        ),
      )
    },
    statistics(): SourceStatistics {
      return { produced, dropped: {}, queued: 0, counters: {} }
    },
    ...(spec.health ? { health: spec.health } : {}),
  }
}
