import type * as Schema from 'effect/Schema'

/**
 * Typed `data` payloads per event type. The vocabulary in `./vocabulary/` (process, network,
 * kubernetes, systemd and correlation events) fills it, and registers each type's runtime schema
 * here when the events module loads, so `validateEvent` checks `data` whatever was imported
 * first. A collector's own types are registered by the collector's module (the synthetic
 * collector's `events.ts` is the worked example). Your own collectors extend the map by
 * declaration merging:
 *
 *   declare module 'tapio-collector-manager' {
 *     interface EventDataMap { 'acme.widget.spun': { rpm: number } }
 *   }
 *
 * and may register a runtime schema with `registerEventData` so `validateEvent` checks it.
 */
// biome-ignore lint: an interface is required for declaration merging
export interface EventDataMap {}

export type KnownEventType = keyof EventDataMap
export type EventData = Readonly<Record<string, unknown>>
export type DataOf<T extends string> = T extends KnownEventType ? EventDataMap[T] : EventData

type AnySchema = Schema.Codec<unknown, unknown, never, never>

const dataSchemas = new Map<string, AnySchema>()

/** Register a schema for the `data` of one event type (used by `validateEvent`). */
export function registerEventData(type: string, schema: Schema.Top): void {
  dataSchemas.set(type, schema as unknown as AnySchema)
}

export function dataSchemaFor(type: string): AnySchema | undefined {
  return dataSchemas.get(type)
}
