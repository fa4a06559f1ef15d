import type * as Schema from 'effect/Schema'
import type { CollectorFactory } from './collector.js'

export interface Detection {
  readonly supported: boolean
  readonly reason: string
}

/**
 * One kind of collector, as its own folder describes it (`src/collectors/<name>/kind.ts`): the
 * schema of its config section (with defaults), whether this machine can run it, and a factory.
 * `detect` and `create` load the collector's code when first called, so a kind that is not
 * configured costs nothing (the Kubernetes client, dbus-next).
 */
export interface CollectorKind {
  readonly kind: string
  readonly description: string
  readonly configSchema: Schema.Struct<Schema.Struct.Fields>
  /** Whether this machine can run it (for `enabled: auto`), and why not. */
  detect(config: Readonly<Record<string, unknown>>): Promise<Detection>
  /** A factory for one registration: a fresh instance per start. */
  create(config: Readonly<Record<string, unknown>>): Promise<CollectorFactory>
}
