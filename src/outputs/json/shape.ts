/**
 * What a serialiser expects a value to look like, compiled from a JSON Schema (the one Effect's
 * `Schema.toJsonSchemaDocument` derives from an event schema). A shape only chooses the fast path:
 * a value that does not fit it makes the encoder fall back to `JSON.stringify`, so a shape that is
 * too narrow costs speed, never correctness.
 */

/** Primitive JSON types a position accepts, as bits. */
export const STRING = 1
export const NUMBER = 2
export const BOOLEAN = 4
export const NULL = 8

export interface Shape {
  /** Bits of STRING, NUMBER, BOOLEAN, NULL. */
  readonly prims: number
  /** A plain object with these known keys. */
  readonly object?: ObjectShape
  /** A plain object used as a map (any keys) of these values. */
  readonly record?: Shape
  /** An array of these items. */
  readonly array?: Shape
  /** The envelope's `data`: its shape depends on the event's type. */
  readonly data?: true
}

export interface Field {
  readonly name: string
  readonly shape: Shape
  /** `"name":` as UTF-8. */
  readonly key: Uint8Array
  /** `,"name":` as UTF-8. */
  readonly nextKey: Uint8Array
}

/**
 * Known keys of a plain object. `seen` remembers which field came at each position of the last
 * object encoded with it: objects made by the same code list their keys in the same order, so
 * a key is found by one comparison instead of a map lookup.
 */
export interface ObjectShape {
  readonly fields: ReadonlyMap<string, Field>
  readonly seenKeys: (string | undefined)[]
  readonly seenFields: (Field | undefined)[]
}

/** Matches nothing: every value at such a position falls back. */
export const OPAQUE: Shape = { prims: 0 }

type JsonSchemaNode = Readonly<Record<string, unknown>>

function isNode(x: unknown): x is JsonSchemaNode {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

export function objectShape(fields: Iterable<readonly [string, Shape]>): ObjectShape {
  const map = new Map<string, Field>()
  for (const [name, shape] of fields) {
    const key = Buffer.from(`${JSON.stringify(name)}:`)
    map.set(name, { name, shape, key, nextKey: Buffer.from(`,${JSON.stringify(name)}:`) })
  }
  return { fields: map, seenKeys: new Array(map.size).fill(undefined), seenFields: new Array(map.size).fill(undefined) }
}

/**
 * A shape from a JSON Schema document (`{ schema, definitions }`, as `Schema.toJsonSchemaDocument`
 * makes it). Understood: `type` string, number, integer, boolean, null, object (`properties`, or
 * `additionalProperties` as a map), array (`items`); `anyOf`/`oneOf` of those; `enum`/`const` by
 * their values' types; `$ref` into the document's definitions. Anything else is OPAQUE.
 */
export function shapeFromJsonSchema(document: { readonly schema: unknown; readonly definitions?: unknown }): Shape {
  const definitions = isNode(document.definitions) ? document.definitions : {}
  const resolving = new Set<string>()

  const union = (shapes: readonly Shape[]): Shape => {
    let prims = 0
    let object: ObjectShape | undefined
    let record: Shape | undefined
    let array: Shape | undefined
    for (const s of shapes) {
      prims |= s.prims
      // Two different object (or array) shapes at one position: keep the first, the other falls back.
      if (s.object && !object) object = s.object
      if (s.record && !record) record = s.record
      if (s.array && !array) array = s.array
    }
    return { prims, ...(object ? { object } : {}), ...(record ? { record } : {}), ...(array ? { array } : {}) }
  }

  const primOf = (v: unknown): number =>
    typeof v === 'string' ? STRING : typeof v === 'number' ? NUMBER : typeof v === 'boolean' ? BOOLEAN : v === null ? NULL : 0

  const convert = (node: unknown): Shape => {
    if (!isNode(node)) return OPAQUE
    const ref = node.$ref
    if (typeof ref === 'string') {
      const name = decodeURIComponent(ref.slice(ref.lastIndexOf('/') + 1))
      // A recursive type: its inner occurrences fall back.
      if (resolving.has(name)) return OPAQUE
      resolving.add(name)
      try {
        return convert(definitions[name])
      } finally {
        resolving.delete(name)
      }
    }
    const alternatives = Array.isArray(node.anyOf) ? node.anyOf : Array.isArray(node.oneOf) ? node.oneOf : undefined
    if (alternatives) return union(alternatives.map(convert))
    if (Array.isArray(node.enum)) return { prims: node.enum.reduce((bits: number, v: unknown) => bits | primOf(v), 0) }
    if ('const' in node) return { prims: primOf(node.const) }
    const type = node.type
    if (Array.isArray(type)) return union(type.map((t) => convert({ ...node, type: t })))
    switch (type) {
      case 'string':
        return { prims: STRING }
      case 'number':
      case 'integer':
        return { prims: NUMBER }
      case 'boolean':
        return { prims: BOOLEAN }
      case 'null':
        return { prims: NULL }
      case 'array':
        return { prims: 0, array: convert(node.items) }
      case 'object': {
        const props = isNode(node.properties) ? node.properties : undefined
        if (props && Object.keys(props).length > 0) return { prims: 0, object: objectShape(Object.entries(props).map(([k, v]) => [k, convert(v)] as const)) }
        if (isNode(node.additionalProperties)) return { prims: 0, record: convert(node.additionalProperties) }
        return OPAQUE
      }
      default:
        return OPAQUE
    }
  }

  return convert(document.schema)
}
