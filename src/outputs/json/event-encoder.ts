import * as Schema from 'effect/Schema'
import type { TapioEvent } from '../../events/event.js'
import { dataSchemaFor } from '../../events/families.js'
import { TapioEventSchema } from '../../events/schema.js'
// The vocabulary registers its data schemas as it loads: the encoder looks them up by type.
import '../../events/vocabulary/index.js'
import { BOOLEAN, NULL, NUMBER, type ObjectShape, objectShape, type Shape, shapeFromJsonSchema, STRING } from './shape.js'
import { ByteWriter, writeBoolean, writeNull, writeNumber, writeString } from './writer.js'
import { type GeneratedSerialiser, generateSerialiser, keyOrderSignature } from './codegen.js'

/**
 * Events as NDJSON bytes through serialisers compiled per event type from the event schemas
 * (`Schema.toJsonSchemaDocument` of the envelope and of each registered `data` schema), written
 * straight into one buffer: no string per event, no `JSON.stringify` on the common path.
 *
 * The bytes are those of `JSON.stringify(event)` + `\n`, byte for byte, for every event: an event
 * of a known type whose keys and values fit its shape is written by the compiled path, which
 * reproduces `JSON.stringify` exactly for what it accepts (keys in the object's own order, ASCII
 * strings without escapes byte by byte, escapes and wider text through `JSON.stringify` of that
 * string, finite numbers as `String(n)`, plain objects and arrays only); any other event (unknown
 * type or key, a class instance, a `toJSON`, a value of another type) is written by
 * `JSON.stringify` instead. `test/outputs/json-encoder.test.ts` checks the equality over arbitrary
 * events of every vocabulary type.
 */
export interface EncodedBatch {
  readonly bytes: Buffer
  /** Where line `i` starts; `offsets[length]` is the end. */
  readonly offsets: Uint32Array
  /** How many events the compiled path wrote (the rest went through `JSON.stringify`). */
  readonly compiled: number
  /** Of those, how many a generated serialiser wrote (codegen.ts; the rest the interpreted one). */
  readonly generated: number
}

const OBJECT_PROTO = Object.prototype
const ARRAY_PROTO = Array.prototype
const getPrototypeOf = Object.getPrototypeOf
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a
const NEWLINE = 0x0a

/** More types than any vocabulary has: past it the cache starts over (a source inventing types). */
const MAX_CACHED_TYPES = 4096
/** Key orders of one type that get a generated serialiser; the type's other orders are interpreted. */
const MAX_ORDERS_PER_TYPE = 8
/** Generated serialisers in all: past it no more are made (a source inventing types or key orders). */
const MAX_GENERATED = 512
/** A scratch buffer grown past this by one huge batch is let go afterwards. */
const MAX_KEPT_SCRATCH = 8 << 20

/**
 * The compiled path is exact only while the built-in prototypes are: an enumerable property on
 * `Object.prototype` would show in `for...in`, a `toJSON` there would be called by JSON.stringify.
 */
function prototypesPlain(): boolean {
  for (const _ in {}) return false
  return !('toJSON' in OBJECT_PROTO) && !('toJSON' in ARRAY_PROTO)
}

function writeValue(w: ByteWriter, v: unknown, s: Shape | undefined): boolean {
  if (s === undefined) return false
  if (typeof v === 'string') {
    if ((s.prims & STRING) === 0) return false
    writeString(w, v)
    return true
  }
  if (typeof v === 'number') {
    if ((s.prims & NUMBER) === 0) return false
    writeNumber(w, v)
    return true
  }
  if (typeof v === 'boolean') {
    if ((s.prims & BOOLEAN) === 0) return false
    writeBoolean(w, v)
    return true
  }
  if (typeof v !== 'object') return false
  if (v === null) {
    if ((s.prims & NULL) === 0) return false
    writeNull(w)
    return true
  }
  if (s.object !== undefined) return writeObject(w, v as Readonly<Record<string, unknown>>, s.object, undefined)
  if (s.array !== undefined) return writeArray(w, v, s.array)
  if (s.record !== undefined) return writeRecord(w, v as Readonly<Record<string, unknown>>, s.record)
  return false
}

/** A literal-made or null-prototype object without a `toJSON` (an own, non-enumerable one included). */
function isPlain(o: Readonly<Record<string, unknown>>): boolean {
  const proto: unknown = getPrototypeOf(o)
  return (proto === OBJECT_PROTO || proto === null) && o.toJSON === undefined
}

/**
 * Keys in the object's own order (`for...in` of a plain object is its own enumerable keys, in the
 * order JSON.stringify uses); `undefined` values are left out, as JSON.stringify does.
 */
function writeObject(w: ByteWriter, o: Readonly<Record<string, unknown>>, shape: ObjectShape, data: Shape | undefined): boolean {
  if (!isPlain(o)) return false
  w.byte(OPEN_BRACE)
  const seenKeys = shape.seenKeys
  const seenFields = shape.seenFields
  let i = 0
  let first = true
  for (const k in o) {
    let f = seenKeys[i] === k ? seenFields[i] : undefined
    if (f === undefined) {
      f = shape.fields.get(k)
      if (f === undefined) return false
      if (i < seenKeys.length) {
        seenKeys[i] = k
        seenFields[i] = f
      }
    }
    i++
    const v = o[k]
    if (v === undefined) continue
    // The key, copied here rather than through w.raw: this loop is the hot path of every event.
    const key = first ? f.key : f.nextKey
    const kn = key.length
    if (w.at + kn > w.buf.length) w.reserve(kn)
    const buf = w.buf
    let at = w.at
    for (let j = 0; j < kn; j++) buf[at++] = key[j] as number
    w.at = at
    first = false
    const fs = f.shape
    // Strings and numbers, most values, without the general dispatch.
    if (typeof v === 'string' && (fs.prims & STRING) !== 0) writeString(w, v)
    else if (typeof v === 'number' && (fs.prims & NUMBER) !== 0) writeNumber(w, v)
    else if (!writeValue(w, v, fs.data === true ? data : fs)) return false
  }
  w.byte(CLOSE_BRACE)
  return true
}

function writeArray(w: ByteWriter, v: object, items: Shape): boolean {
  if (!Array.isArray(v) || getPrototypeOf(v) !== ARRAY_PROTO) return false
  const a = v as readonly unknown[]
  w.byte(OPEN_BRACKET)
  for (let i = 0; i < a.length; i++) {
    if (i > 0) w.byte(COMMA)
    // A hole or undefined (JSON.stringify writes null) does not fit any shape: falls back.
    if (!writeValue(w, a[i], items)) return false
  }
  w.byte(CLOSE_BRACKET)
  return true
}

function writeRecord(w: ByteWriter, o: Readonly<Record<string, unknown>>, values: Shape): boolean {
  if (!isPlain(o)) return false
  w.byte(OPEN_BRACE)
  let first = true
  for (const k in o) {
    const v = o[k]
    if (v === undefined) continue
    if (!first) w.byte(COMMA)
    first = false
    writeString(w, k)
    w.byte(COLON)
    if (!writeValue(w, v, values)) return false
  }
  w.byte(CLOSE_BRACE)
  return true
}

/** The envelope's shape: its `data` is looked up per event type. */
function envelopeShape(): ObjectShape {
  const doc = Schema.toJsonSchemaDocument(TapioEventSchema)
  const converted = shapeFromJsonSchema(doc).object
  if (converted === undefined) throw new Error('the TapioEvent JSON Schema is not an object')
  return objectShape([...converted.fields.values()].map((f) => [f.name, f.name === 'data' ? { prims: 0, data: true } : f.shape] as const))
}

interface CachedData {
  readonly schema: unknown
  readonly shape: Shape | undefined
  /** Generated serialisers by the envelope's key order (keyOrderSignature); undefined: not generatable. */
  readonly orders: Map<string, GeneratedSerialiser | undefined>
  /** The one that wrote this type's last event: tried first. */
  last: GeneratedSerialiser | undefined
}

const HELPERS = { writeValue, isPlain }

export class EventEncoder {
  private readonly w = new ByteWriter()
  private envelope: ObjectShape | undefined
  private readonly dataShapes = new Map<string, CachedData>()
  private lastType: string | undefined
  private lastData: CachedData | undefined
  private generatedCount = 0
  /** Events written by a generated serialiser in the current batch. */
  private generatedInBatch = 0

  /** Every event as its `JSON.stringify` line plus `\n`, in one buffer sized to it. */
  encode(events: readonly TapioEvent[]): EncodedBatch {
    const w = this.w
    w.at = 0
    const n = events.length
    const offsets = new Uint32Array(n + 1)
    const fast = prototypesPlain()
    let compiled = 0
    this.generatedInBatch = 0
    for (let i = 0; i < n; i++) {
      const e = events[i] as TapioEvent
      const start = w.at
      offsets[i] = start
      if (fast && this.writeEvent(e)) compiled++
      else {
        w.at = start
        w.text(JSON.stringify(e) ?? 'null')
      }
      w.byte(NEWLINE)
    }
    offsets[n] = w.at
    const bytes = w.copyOut(0)
    if (w.buf.length > MAX_KEPT_SCRATCH) this.w.buf = Buffer.allocUnsafe(1 << 16)
    return { bytes, offsets, compiled, generated: this.generatedInBatch }
  }

  /** The compiled path for one event; false when it does not fit (the caller rewinds). */
  private writeEvent(e: TapioEvent): boolean {
    if (typeof e !== 'object' || e === null) return false
    const type = e.type
    if (typeof type !== 'string') return false
    const cached = type === this.lastType ? this.lastData : this.dataEntry(type)
    if (cached === undefined) return false
    const data = cached.shape
    if (data === undefined) return false
    this.envelope ??= envelopeShape()
    const o = e as unknown as Readonly<Record<string, unknown>>
    const w = this.w
    const start = w.at
    let gen = cached.last
    if (gen !== undefined) {
      const r = gen(w, o)
      if (r === 1) {
        this.generatedInBatch++
        return true
      }
      if (r === 2) {
        // The keys were this serialiser's, a value did not fit: the interpreted path decides.
        w.at = start
        return writeObject(w, o, this.envelope, data)
      }
    }
    gen = this.serialiserFor(cached, o, data, this.envelope)
    if (gen !== undefined && gen !== cached.last) {
      cached.last = gen
      const r = gen(w, o)
      if (r === 1) {
        this.generatedInBatch++
        return true
      }
      w.at = start
    }
    return writeObject(w, o, this.envelope, data)
  }

  /** The generated serialiser for this event's key order, made on first sight within the bounds. */
  private serialiserFor(cached: CachedData, o: Readonly<Record<string, unknown>>, data: Shape, envelope: ObjectShape): GeneratedSerialiser | undefined {
    if (!isPlain(o)) return undefined
    const sig = keyOrderSignature(o)
    if (cached.orders.has(sig)) return cached.orders.get(sig)
    if (cached.orders.size >= MAX_ORDERS_PER_TYPE || this.generatedCount >= MAX_GENERATED) return undefined
    const gen = generateSerialiser(envelope, data, o, HELPERS)
    cached.orders.set(sig, gen)
    if (gen !== undefined) this.generatedCount++
    return gen
  }

  private dataEntry(type: string): CachedData | undefined {
    const schema = dataSchemaFor(type)
    let cached = this.dataShapes.get(type)
    // A type registered again with another schema is compiled again.
    if (cached === undefined || cached.schema !== schema) {
      if (this.dataShapes.size >= MAX_CACHED_TYPES) {
        this.dataShapes.clear()
        this.generatedCount = 0
      }
      if (cached !== undefined) this.generatedCount -= generatedIn(cached)
      cached = { schema, shape: schema === undefined ? undefined : compileData(schema), orders: new Map(), last: undefined }
      this.dataShapes.set(type, cached)
    }
    this.lastType = type
    this.lastData = cached
    return cached
  }
}

function generatedIn(cached: CachedData): number {
  let n = 0
  for (const g of cached.orders.values()) if (g !== undefined) n++
  return n
}

function compileData(schema: Schema.Top): Shape | undefined {
  try {
    const shape = shapeFromJsonSchema(Schema.toJsonSchemaDocument(schema))
    return shape.object !== undefined || shape.record !== undefined ? shape : undefined
  } catch {
    // A schema without a JSON Schema form: its events go through JSON.stringify.
    return undefined
  }
}

/** The agent's one encoder (single-threaded: its scratch buffer is reused batch after batch). */
let shared: EventEncoder | undefined

export function encodeNdjson(events: readonly TapioEvent[]): EncodedBatch {
  shared ??= new EventEncoder()
  return shared.encode(events)
}
