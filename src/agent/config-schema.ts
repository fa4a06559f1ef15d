import * as Schema from 'effect/Schema'
import { AgentConfigSchema, CollectorMetaFields, LOOPBACK_HOSTS } from './config.js'

/**
 * The configuration file's JSON Schema: standalone Draft 2020-12 (editors, CI validators), built
 * from the same Effect schemas the agent decodes with. Every object is closed
 * (`additionalProperties: false`), and a collector entry is checked against its kind's schema,
 * chosen by `kind` (or, without `kind`, by the entry's name), so user-named instances
 * (`units: { kind: systemd }`) are covered.
 */

export type JsonSchema = { [k: string]: unknown }

const DIALECT = 'https://json-schema.org/draft/2020-12/schema'
const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'

function isObject(v: unknown): v is JsonSchema {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Effect describes the canonical JSON codec, where an optional key also accepts `null`; the agent's
 * decoder does not (a key with no value is an error), so the `null` branch goes.
 */
function withoutNullBranches(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutNullBranches)
  if (!isObject(node)) return node
  const out: JsonSchema = {}
  for (const [k, v] of Object.entries(node)) out[k] = withoutNullBranches(v)
  const any = out.anyOf
  if (Array.isArray(any)) {
    const rest = any.filter((b) => !(isObject(b) && b.type === 'null' && Object.keys(b).length === 1))
    if (rest.length !== any.length) {
      delete out.anyOf
      if (rest.length === 1) return { ...(rest[0] as JsonSchema), ...out }
      out.anyOf = rest
    }
  }
  return out
}

/** Closes every object that lists its properties (defence in depth: Effect's `onExcessProperty: 'error'` does it too). */
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects)
  if (!isObject(node)) return node
  const out: JsonSchema = {}
  for (const [k, v] of Object.entries(node)) out[k] = closeObjects(v)
  if (isObject(out.properties) && out.additionalProperties === undefined && out.patternProperties === undefined) out.additionalProperties = false
  return out
}

function documentOf(schema: Schema.Top, defs: JsonSchema): JsonSchema {
  const doc = Schema.toJsonSchemaDocument(schema, { onExcessProperty: 'error' }) as unknown as { schema: JsonSchema; definitions?: JsonSchema }
  for (const [k, v] of Object.entries(doc.definitions ?? {})) defs[k] = v
  return closeObjects(withoutNullBranches(doc.schema)) as JsonSchema
}

/** `#/definitions/X` (Effect's document) -> `#/$defs/X` (a standalone 2020-12 schema). */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs)
  if (!isObject(node)) return node
  const out: JsonSchema = {}
  for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' ? v.replace(/^#\/definitions\//, '#/$defs/') : rewriteRefs(v)
  return out
}

export interface KindSchema {
  readonly kind: string
  readonly description: string
  readonly configSchema: Schema.Struct<Schema.Struct.Fields>
}

export function configJsonSchema(kinds: readonly KindSchema[]): JsonSchema {
  const defs: JsonSchema = {}
  const root = documentOf(AgentConfigSchema, defs)
  const properties = root.properties as JsonSchema
  const collectorDescription = isObject(properties.collectors) ? properties.collectors.description : undefined
  for (const k of kinds) {
    const entry = documentOf(Schema.Struct({ ...CollectorMetaFields, ...k.configSchema.fields }), defs)
    const props = entry.properties as JsonSchema
    props.kind = { const: k.kind, description: `The collector kind: ${k.kind} — ${k.description}.` }
    defs[`collector.${k.kind}`] = { ...entry, description: `A collector of kind ${k.kind}: ${k.description}.` }
  }
  const kindNames = kinds.map((k) => k.kind)
  // An entry that names its kind is checked by that kind's schema.
  defs.collectorEntry = {
    description: 'A collector entry that names its kind.',
    type: 'object',
    required: ['kind'],
    properties: { kind: { enum: kindNames, description: 'The collector kind.' } },
    allOf: kinds.map((k) => ({ if: { type: 'object', properties: { kind: { const: k.kind } } }, then: { $ref: `#/$defs/collector.${k.kind}` } })),
  }
  properties.collectors = {
    description:
      collectorDescription ??
      'Collector instances by name. `kind` defaults to the name (`ebpf: {}`); an instance with any other name says its kind (`units: { kind: systemd }`).',
    type: 'object',
    propertyNames: { pattern: NAME_PATTERN },
    // Named after a kind: `kind` may be left out (it defaults to the name).
    properties: Object.fromEntries(
      kindNames.map((k) => [
        k,
        { if: { type: 'object', required: ['kind'], properties: { kind: true } }, then: { $ref: '#/$defs/collectorEntry' }, else: { $ref: `#/$defs/collector.${k}` } },
      ]),
    ),
    additionalProperties: { $ref: '#/$defs/collectorEntry' },
  }
  // The one rule across sections: a non-loopback http.host needs a token.
  const loopbackRule = {
    if: { type: 'object', required: ['http'], properties: { http: { type: 'object', required: ['host'], properties: { host: { not: { enum: [...LOOPBACK_HOSTS] } } } } } },
    then: { properties: { http: { type: 'object', required: ['token'], properties: { token: true } } } },
  }
  return rewriteRefs({
    $schema: DIALECT,
    $id: 'https://github.com/tapio/tapio-collector-manager/docs/agent-config.schema.json',
    title: 'tapio-agent configuration',
    description: 'The YAML configuration of tapio-agent (docs/agent.md). Every key is optional; unknown keys are errors.',
    ...root,
    allOf: [loopbackRule],
    $defs: defs,
  }) as JsonSchema
}

/**
 * Every property (JSON pointer) without a description: the schema is a reference, so none may
 * lack one. Conditions (`if`/`then`/`else`) restate fields defined elsewhere and are skipped.
 */
export function undescribed(schema: JsonSchema): string[] {
  const missing: string[] = []
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`))
    if (!isObject(node)) return
    for (const [k, v] of Object.entries(node)) {
      if (k === 'properties' && isObject(v)) {
        for (const [name, p] of Object.entries(v)) {
          if (isObject(p) && typeof p.description !== 'string' && !('$ref' in p) && !('if' in p)) missing.push(`${at}/properties/${name}`)
          walk(p, `${at}/properties/${name}`)
        }
      } else if (k !== 'if' && k !== 'then' && k !== 'else') walk(v, `${at}/${k}`)
    }
  }
  walk(schema, '#')
  return missing
}
