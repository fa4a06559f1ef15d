import { BOOLEAN, type Field, NULL, NUMBER, type ObjectShape, type Shape, STRING } from './shape.js'
import type { ByteWriter } from './writer.js'
import { writeBoolean, writeNull, writeNumber, writeString } from './writer.js'

/**
 * Serialisers generated as JavaScript source (`new Function`) for one event type and one order of
 * the envelope's keys: every key, its bytes and its value's type checks are constants in the code,
 * so an event is written without walking a field table per key. A generated serialiser first checks
 * that the object's own keys are exactly the ones it was made for, in that order (so its bytes are
 * `JSON.stringify`'s); nested objects are inlined for the key order of the event it was made from,
 * and a nested object in another order is written by the interpreted serialiser instead.
 *
 * Safety of the generated source: nothing from a schema or an event is pasted in as code. Key names
 * appear only as string literals made by `JSON.stringify(name)` (a valid, closed JS string literal
 * for any string, lone surrogates and U+2028 included); key bytes appear only as integer literals;
 * everything else (shapes, long key bytes, helpers) is passed in as arguments.
 */

/** 1: written; 0: the object's own keys are not the expected ones (nothing written); 2: a value did not fit (rewind). */
export type GeneratedResult = 0 | 1 | 2
export type GeneratedSerialiser = (w: ByteWriter, o: Readonly<Record<string, unknown>>) => GeneratedResult

/** The interpreted serialiser for one value and its shape (event-encoder.ts), for what is not inlined. */
export type WriteValue = (w: ByteWriter, v: unknown, s: Shape | undefined) => boolean
export type IsPlain = (o: Readonly<Record<string, unknown>>) => boolean

/** Keys longer than this are copied by a loop over a constant array rather than unrolled. */
const UNROLL_BYTES = 48
/** Nested objects deeper than this are left to the interpreted serialiser (bounded source size). */
const MAX_INLINE_DEPTH = 4

/** Own enumerable keys of `o`, exactly `keys` in that order (`for...in` of a plain object). */
export function keysAre(o: object, keys: readonly string[]): boolean {
  let i = 0
  for (const k in o) {
    if (k !== keys[i]) return false
    i++
  }
  return i === keys.length
}

/** The own enumerable keys of a plain object, as a cache key: unambiguous for any key text. */
export function keyOrderSignature(o: object): string {
  let sig = ''
  for (const k in o) sig += JSON.stringify(k)
  return sig
}

class Source {
  private readonly lines: string[] = []
  /** Values the code refers to by index: shapes, key arrays, long key bytes. */
  readonly constants: unknown[] = []
  private vars = 0

  line(s: string): void {
    this.lines.push(s)
  }

  constant(v: unknown): string {
    this.constants.push(v)
    return `C[${this.constants.length - 1}]`
  }

  fresh(prefix: string): string {
    return `${prefix}${this.vars++}`
  }

  /** Copies constant bytes into the writer. */
  bytes(b: Uint8Array): void {
    const n = b.length
    if (n > UNROLL_BYTES) {
      this.line(`w.raw(${this.constant(b)});`)
      return
    }
    const stores: string[] = []
    for (let i = 0; i < n; i++) stores.push(`b[a${i === 0 ? '' : `+${i}`}]=${b[i] as number};`)
    this.line(`if (w.at + ${n} > w.buf.length) w.reserve(${n}); { const b = w.buf, a = w.at; ${stores.join('')} w.at = a + ${n}; }`)
  }

  text(): string {
    return this.lines.join('\n')
  }
}

const OPEN_BRACE = Uint8Array.of(0x7b)
const CLOSE_BRACE = Uint8Array.of(0x7d)

function isPlainSample(v: unknown): v is Readonly<Record<string, unknown>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto: unknown = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** The sample's keys when every one is a field of `shape` (else it is not inlined). */
function sampleKeys(shape: ObjectShape, sample: Readonly<Record<string, unknown>>): Field[] | undefined {
  const fields: Field[] = []
  for (const k in sample) {
    const f = shape.fields.get(k)
    if (f === undefined) return undefined
    fields.push(f)
  }
  return fields
}

/**
 * Writes `v` (a JS variable name) of shape `s`; `sample` is the value at this position in the event
 * the serialiser is made from (it chooses the key order of nested objects).
 */
function emitValue(src: Source, v: string, s: Shape, sample: unknown, depth: number): void {
  const branches: string[] = []
  if ((s.prims & STRING) !== 0) branches.push(`if (typeof ${v} === 'string') writeString(w, ${v});`)
  if ((s.prims & NUMBER) !== 0) branches.push(`if (typeof ${v} === 'number') writeNumber(w, ${v});`)
  if ((s.prims & BOOLEAN) !== 0) branches.push(`if (typeof ${v} === 'boolean') writeBoolean(w, ${v});`)
  if ((s.prims & NULL) !== 0) branches.push(`if (${v} === null) writeNull(w);`)
  const structured = s.object !== undefined || s.array !== undefined || s.record !== undefined
  src.line(branches.join(' else '))
  if (!structured) {
    src.line(`${branches.length > 0 ? 'else ' : ''}return 2;`)
    return
  }
  const shapeRef = src.constant(s)
  const fields = s.object !== undefined && depth < MAX_INLINE_DEPTH && isPlainSample(sample) ? sampleKeys(s.object, sample) : undefined
  if (fields === undefined || s.object === undefined) {
    src.line(`${branches.length > 0 ? 'else ' : ''}if (!writeValue(w, ${v}, ${shapeRef})) return 2;`)
    return
  }
  const keysRef = src.constant(fields.map((f) => f.name))
  src.line(`${branches.length > 0 ? 'else ' : ''}if (typeof ${v} === 'object' && ${v} !== null && isPlain(${v}) && keysAre(${v}, ${keysRef})) {`)
  emitObjectBody(src, v, fields, sample as Readonly<Record<string, unknown>>, undefined, depth + 1)
  src.line(`} else if (!writeValue(w, ${v}, ${shapeRef})) return 2;`)
}

/** The fields of an object already checked to have exactly these keys in this order. */
function emitObjectBody(src: Source, o: string, fields: readonly Field[], sample: Readonly<Record<string, unknown>>, data: Shape | undefined, depth: number): void {
  src.bytes(OPEN_BRACE)
  const sep = src.fresh('s')
  src.line(`let ${sep} = false;`)
  for (const f of fields) {
    const v = src.fresh('v')
    src.line(`const ${v} = ${o}[${JSON.stringify(f.name)}];`)
    src.line(`if (${v} !== undefined) {`)
    src.line(`if (${sep}) {`)
    src.bytes(f.nextKey)
    src.line('} else {')
    src.bytes(f.key)
    src.line(`${sep} = true; }`)
    const shape = f.shape.data === true ? data : f.shape
    if (shape === undefined) src.line('return 2;')
    else emitValue(src, v, shape, sample[f.name], depth)
    src.line('}')
  }
  src.bytes(CLOSE_BRACE)
}

export interface CodegenHelpers {
  readonly writeValue: WriteValue
  readonly isPlain: IsPlain
}

/**
 * A serialiser for events shaped like `sample` (its envelope keys in its order), whose `data`
 * has the shape `data`; undefined when the sample has a key the envelope does not know.
 */
export function generateSerialiser(envelope: ObjectShape, data: Shape, sample: Readonly<Record<string, unknown>>, helpers: CodegenHelpers): GeneratedSerialiser | undefined {
  const fields = sampleKeys(envelope, sample)
  if (fields === undefined) return undefined
  const src = new Source()
  const keysRef = src.constant(fields.map((f) => f.name))
  src.line(`if (!keysAre(o, ${keysRef})) return 0;`)
  src.line('if (!isPlain(o)) return 2;')
  emitObjectBody(src, 'o', fields, sample, data, 0)
  src.line('return 1;')
  const factory = new Function(
    'C',
    'keysAre',
    'isPlain',
    'writeValue',
    'writeString',
    'writeNumber',
    'writeBoolean',
    'writeNull',
    `'use strict';\nreturn function generatedSerialiser(w, o) {\n${src.text()}\n};`,
  ) as (...args: unknown[]) => GeneratedSerialiser
  return factory(src.constants, keysAre, helpers.isPlain, helpers.writeValue, writeString, writeNumber, writeBoolean, writeNull)
}
