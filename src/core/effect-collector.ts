import * as Effect from 'effect/Effect'
import * as Exit from 'effect/Exit'
import * as Scope from 'effect/Scope'
import * as Stream from 'effect/Stream'
import type { Collector, CollectorHealth, CollectorOutput } from './collector.js'

/** An Effect-native collector: acquire resources in a scope, expose events as a Stream. */
export interface EffectCollectorSpec<E> {
  /** Runs at start; resources it adds to the scope are released at stop. */
  readonly acquire?: Effect.Effect<void, E, Scope.Scope>
  readonly events: Stream.Stream<CollectorOutput, E>
  readonly health?: () => CollectorHealth
}

/** Adapt an Effect-native collector to the plain Collector contract. */
export function effectCollector<E>(spec: EffectCollectorSpec<E>): Collector {
  let scope: Scope.Closeable | undefined
  let stopped: Promise<void> = Promise.resolve()
  let signalStopped: () => void = () => {}
  return {
    async start(signal) {
      const s = Effect.runSync(Scope.make())
      scope = s
      stopped = new Promise<void>((resolve) => {
        signalStopped = resolve
      })
      if (spec.acquire) await Effect.runPromise(Scope.provide(spec.acquire, s), { signal })
    },
    async stop() {
      const s = scope
      scope = undefined
      signalStopped()
      if (s) await Effect.runPromise(Scope.close(s, Exit.void))
    },
    events() {
      // The stream ends when the collector is stopped, so the supervisor's drain completes.
      const untilStopped = stopped
      return Stream.toAsyncIterable(
        spec.events.pipe(
          Stream.interruptWhen(Effect.promise(() => untilStopped)),
          Stream.mapError((e) => (e instanceof Error ? e : new Error(String(e)))),
        ),
      )
    },
    ...(spec.health ? { health: spec.health } : {}),
  }
}
