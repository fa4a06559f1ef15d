import type { Collector, CollectorOutput } from '../../../src/core/collector.js'
import type { EventInput } from '../../../src/events/event.js'

export interface Consumption {
  readonly events: EventInput[]
  /** Resolves when the iterable ends: undefined when it returned, the error when it threw. */
  readonly done: Promise<Error | undefined>
  readonly batches: number
}

export function flatten(item: CollectorOutput): readonly EventInput[] {
  return 'type' in item ? [item] : item
}

/** Drain events() the way the manager would, keeping everything for assertions. */
export function consume(collector: Collector): Consumption {
  const events: EventInput[] = []
  let batches = 0
  const done = (async (): Promise<Error | undefined> => {
    try {
      for await (const item of collector.events()) {
        batches += 1
        events.push(...flatten(item))
      }
      return undefined
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err))
    }
  })()
  return {
    events,
    done,
    get batches() {
      return batches
    },
  }
}

/** The `data` of an event as a plain record, for assertions on fields of any event type. */
export function dataOf(e: EventInput): Readonly<Record<string, unknown>> {
  return (e.data ?? {}) as Readonly<Record<string, unknown>>
}

export function forUnit(events: readonly EventInput[], unit: string, type?: string): EventInput[] {
  return events.filter((e) => dataOf(e).unit === unit && (type === undefined || e.type === type))
}
