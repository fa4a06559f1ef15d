import fc from 'fast-check'
import * as Schema from 'effect/Schema'
import { describe, expect, it } from 'vitest'
import {
  CNI_EVENT_TYPES,
  dataSchemaFor,
  EBPF_EVENT_TYPES,
  KUBERNETES_EVENT_TYPES,
  makeEvent,
  registerEventData,
  SEVERITIES,
  SYSTEMD_EVENT_TYPES,
  type TapioEvent,
} from '../../src/events/index.js'
// `synthetic.tick` is the synthetic collector's own type: its module registers it.
import '../../src/collectors/synthetic/events.js'
import { EventEncoder } from '../../src/outputs/json/event-encoder.js'
import { ByteWriter, writeNumber, writeString } from '../../src/outputs/json/writer.js'

/** Every type of the vocabulary: each must take the compiled path. */
const VOCABULARY: readonly string[] = [
  ...Object.values(EBPF_EVENT_TYPES),
  ...KUBERNETES_EVENT_TYPES,
  ...CNI_EVENT_TYPES,
  ...SYSTEMD_EVENT_TYPES,
  'synthetic.tick',
]

// ---- arbitrary values ---------------------------------------------------------------------------

/** Text of every kind JSON cares about: ASCII, escapes, controls, wide and astral characters, lone surrogates. */
const anyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '日', '🚀', '\ud800', '\udfff', '/'), maxLength: 6 }),
  fc.constantFrom('', 'kernel.process.exec', '1764456789123456789', 'a1b2c3d4e5f6-2n9c1'),
  // Long text takes another path (a native scan and copy): plain, and with one odd character anywhere.
  fc.string({ minLength: 30, maxLength: 90 }),
  fc
    .tuple(fc.string({ minLength: 30, maxLength: 60 }), fc.nat(), fc.constantFrom('"', '\\', '\n', '\u0000', '\u007f', 'é', '日', '🚀', '\ud800', '\udfff'))
    .map(([s, at, c]) => s.slice(0, at % (s.length + 1)) + c + s.slice(at % (s.length + 1))),
)

const anyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.integer({ min: 0, max: 10_000_000 }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(0, -0, 2 ** 31, -(2 ** 31), 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e-7, 123.456, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, Number.MIN_VALUE),
)

type Node = Readonly<Record<string, unknown>>
const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && !Array.isArray(x)

/** An object with `keys` in a random order; optional ones sometimes absent or `undefined`. */
function shuffledObject(entries: readonly (readonly [string, fc.Arbitrary<unknown>, boolean])[]): fc.Arbitrary<Record<string, unknown>> {
  const parts = entries.map(([key, arb, required]) =>
    required ? arb.map((v) => [key, v] as const) : fc.oneof(arb.map((v) => [key, v] as const), fc.constant([key, undefined] as const), fc.constant(undefined)),
  )
  return fc
    .tuple(fc.tuple(...parts), fc.infiniteStream(fc.nat()).map((s) => [...s.take(entries.length)]))
    .map(([kvs, order]) => {
      const present = kvs.filter((kv): kv is readonly [string, unknown] => kv !== undefined)
      const ranked = present.map((kv, i) => ({ kv, rank: order[i] ?? 0 }))
      ranked.sort((a, b) => a.rank - b.rank)
      const o: Record<string, unknown> = {}
      for (const { kv } of ranked) o[kv[0]] = kv[1]
      return o
    })
}

/** Values valid for a JSON Schema document of the vocabulary (as `Schema.toJsonSchemaDocument` makes them). */
function arbitraryFor(node: unknown, definitions: Node): fc.Arbitrary<unknown> {
  if (!isNode(node)) return fc.constant(null)
  if (typeof node.$ref === 'string') return arbitraryFor(definitions[node.$ref.slice(node.$ref.lastIndexOf('/') + 1)], definitions)
  const alternatives = (node.anyOf ?? node.oneOf) as unknown[] | undefined
  if (alternatives) {
    // `null` stands for an optional key in this JSON form; the events hold undefined or a value.
    const real = alternatives.filter((a) => !(isNode(a) && a.type === 'null'))
    const isNonFinite = (a: unknown) => isNode(a) && Array.isArray(a.enum) && a.enum.includes('NaN')
    return fc.oneof(...real.filter((a) => !isNonFinite(a)).map((a) => arbitraryFor(a, definitions)))
  }
  if (Array.isArray(node.enum)) return fc.constantFrom(...(node.enum as unknown[]))
  switch (node.type) {
    case 'string':
      return anyString
    case 'number':
      return anyNumber
    case 'integer':
      return fc.maxSafeInteger()
    case 'boolean':
      return fc.boolean()
    case 'array':
      return fc.array(arbitraryFor(node.items, definitions), { maxLength: 3 })
    case 'object': {
      const props = isNode(node.properties) ? node.properties : {}
      const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : [])
      if (Object.keys(props).length === 0 && isNode(node.additionalProperties)) {
        return fc.dictionary(anyString, arbitraryFor(node.additionalProperties, definitions), { maxKeys: 4 })
      }
      return shuffledObject(Object.entries(props).map(([k, v]) => [k, arbitraryFor(v, definitions), required.has(k)] as const))
    }
    default:
      throw new Error(`test generator: unexpected JSON Schema ${JSON.stringify(node)}`)
  }
}

function dataArbitrary(type: string): fc.Arbitrary<unknown> {
  const schema = dataSchemaFor(type)
  if (!schema) throw new Error(`${type}: no data schema registered`)
  const doc = Schema.toJsonSchemaDocument(schema)
  return arbitraryFor(doc.schema, (doc.definitions ?? {}) as Node)
}

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })

/** A valid event of `type`, keys in any order, optional parts present, absent or undefined. */
function eventArbitrary(type: string): fc.Arbitrary<Record<string, unknown>> {
  return shuffledObject([
    ['id', fc.oneof(anyString, fc.constant('a1b2c3d4e5f6-2n9c1')), true],
    ['timestamp', fc.bigInt({ min: 0n, max: 10n ** 20n - 1n }).map(String), true],
    ['type', fc.constant(type), true],
    ['source', anyString, true],
    ['severity', fc.constantFrom(...SEVERITIES), true],
    ['data', dataArbitrary(type), true],
    ['entity', shuffledObject([['kind', anyString, true], ['name', anyString, true], ['namespace', anyString, false], ['uid', anyString, false]]), false],
    [
      'k8s',
      shuffledObject([
        ['namespace', anyString, false],
        ['pod', anyString, false],
        ['podUid', anyString, false],
        ['container', anyString, false],
        ['containerId', anyString, false],
        ['node', anyString, false],
        ['workload', shuffledObject([['kind', anyString, true], ['name', anyString, true]]), false],
      ]),
      false,
    ],
    ['trace', shuffledObject([['traceId', hex(32), true], ['spanId', hex(16), true], ['traceFlags', fc.integer({ min: 0, max: 255 }), false]]), false],
  ])
}

class Custom {
  constructor(readonly value: number) {}
}

/** Values JSON.stringify treats specially, or that no shape expects. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(undefined, null, () => 1, Symbol('s'), new Date(0), new Custom(1), { toJSON: () => 'custom' }, [undefined, 1], new Map(), /re/),
  fc.bigInt().map((b) => ({ toJSON: () => b.toString() })),
)

/** An extra key (unknown to the schema), at the top or inside `data`, or a known key holding an odd value. */
function withOddity(event: Record<string, unknown>, where: 'top' | 'data' | 'replace', key: string, value: unknown): Record<string, unknown> {
  if (where === 'top') return { ...event, [key]: value }
  const data = event.data as Record<string, unknown>
  if (where === 'data') return { ...event, data: { ...data, [key]: value } }
  const keys = Object.keys(data)
  const victim = keys[key.length % Math.max(1, keys.length)]
  return victim === undefined ? event : { ...event, data: { ...data, [victim]: value } }
}

const reference = (events: readonly unknown[]) => events.map((e) => `${JSON.stringify(e)}\n`).join('')

describe('compiled event serialisers', () => {
  it('knows every type of the vocabulary (a JSON Schema form of every data schema)', () => {
    const encoder = new EventEncoder()
    for (const type of VOCABULARY) {
      const [sample] = fc.sample(eventArbitrary(type), { numRuns: 1, seed: 7 })
      expect(encoder.encode([sample as unknown as TapioEvent]).compiled, type).toBe(1)
    }
  })

  it('writes exactly JSON.stringify(event) for arbitrary valid events of every vocabulary type, through the compiled path', () => {
    const encoder = new EventEncoder()
    fc.assert(
      fc.property(fc.constantFrom(...VOCABULARY).chain(eventArbitrary), (event) => {
        const out = encoder.encode([event as unknown as TapioEvent])
        expect(out.bytes.toString('utf8')).toBe(reference([event]))
        expect(out.bytes.equals(Buffer.from(reference([event])))).toBe(true)
        expect(out.compiled).toBe(1)
      }),
      { numRuns: 3000 },
    )
  })

  it('falls back to JSON.stringify, byte for byte, for unknown keys, class instances, toJSON and values of other types', () => {
    const encoder = new EventEncoder()
    const oddity = fc.tuple(fc.constantFrom('top', 'data', 'replace') as fc.Arbitrary<'top' | 'data' | 'replace'>, fc.oneof(anyString, fc.constantFrom('extra', 'toJSON', '0', '42')), oddValue)
    fc.assert(
      fc.property(fc.constantFrom(...VOCABULARY).chain(eventArbitrary), oddity, (event, [where, key, value]) => {
        const odd = withOddity(event, where, key, value)
        const out = encoder.encode([odd as unknown as TapioEvent])
        expect(out.bytes.equals(Buffer.from(reference([odd])))).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })

  it('writes whole batches with their line offsets, mixing compiled, fallback and unregistered types', () => {
    const encoder = new EventEncoder()
    const unregistered = fc.record({ id: anyString, timestamp: fc.constant('1'), type: fc.constantFrom('acme.widget.spun', 'test.text'), source: anyString, severity: fc.constant('info'), data: fc.dictionary(anyString, fc.jsonValue(), { maxKeys: 3 }) })
    const event = fc.oneof(fc.constantFrom(...VOCABULARY).chain(eventArbitrary), unregistered)
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        const out = encoder.encode(events as unknown as TapioEvent[])
        expect(out.bytes.equals(Buffer.from(reference(events)))).toBe(true)
        expect(out.offsets).toHaveLength(events.length + 1)
        for (let i = 0; i < events.length; i++) {
          expect(out.bytes.subarray(out.offsets[i], out.offsets[i + 1]).toString('utf8')).toBe(reference([events[i]]))
        }
        expect(out.offsets[events.length]).toBe(out.bytes.length)
      }),
      { numRuns: 500 },
    )
  })

  it('grows its buffer for batches and strings larger than it, ASCII and wide alike', () => {
    const encoder = new EventEncoder()
    const events = Array.from({ length: 300 }, (_, i) =>
      makeEvent('src', 'kernel.file.open', { pid: i, tid: i, uid: 0, comm: 'c', cgroupId: '1', path: (i % 2 ? 'a' : '語').repeat(1000 + i), flags: 0, mode: 0o644 }),
    )
    const out = encoder.encode(events)
    expect(out.bytes.equals(Buffer.from(reference(events)))).toBe(true)
    expect(out.compiled).toBe(events.length)
  })

  it('writes events through generated serialisers (one per type and key order), byte for byte, values in any form', () => {
    // A fresh encoder per case: the first event of its type makes the generated serialiser; the
    // second has the same top-level keys in the same order but other values (nested objects in
    // other orders, optional keys undefined), so it reuses it.
    const pair = fc.constantFrom(...VOCABULARY).chain((type) => fc.tuple(eventArbitrary(type), eventArbitrary(type)))
    fc.assert(
      fc.property(pair, ([first, other]) => {
        const second: Record<string, unknown> = {}
        for (const k of Object.keys(first)) second[k] = k in other ? other[k] : first[k]
        const encoder = new EventEncoder()
        const events = [first, second, first]
        const out = encoder.encode(events as unknown as TapioEvent[])
        expect(out.bytes.equals(Buffer.from(reference(events)))).toBe(true)
        expect(out.compiled).toBe(3)
        expect(out.generated).toBe(3)
      }),
      { numRuns: 2000 },
    )
  })

  it('generates serialisers for a bounded number of key orders per type; the others are written by the interpreted path', () => {
    const encoder = new EventEncoder()
    const keys = ['type', 'severity', 'timestamp', 'data', 'id', 'source'] as const
    const base: Record<(typeof keys)[number], unknown> = { type: 'synthetic.tick', severity: 'info', timestamp: '1', data: { seq: 1, generation: 1 }, id: 'x', source: 'gen0' }
    // 30 different orders, each twice.
    const events: Record<string, unknown>[] = []
    for (let i = 0; i < 30; i++) {
      const order = [...keys]
      for (let j = order.length - 1; j > 0; j--) {
        const r = (i * 7 + j * 13) % (j + 1)
        ;[order[j], order[r]] = [order[r] as (typeof keys)[number], order[j] as (typeof keys)[number]]
      }
      const e: Record<string, unknown> = {}
      for (const k of order) e[k] = k === 'data' ? { seq: i, generation: 1 } : base[k]
      events.push(e, { ...e })
    }
    const distinct = new Set(events.map((e) => Object.keys(e).join())).size
    expect(distinct).toBeGreaterThan(8)
    const out = encoder.encode(events as unknown as TapioEvent[])
    expect(out.bytes.equals(Buffer.from(reference(events)))).toBe(true)
    expect(out.compiled).toBe(events.length)
    // The first 8 orders (both events of each) through generated code, the rest interpreted.
    expect(out.generated).toBe(16)
  })

  it('embeds any key name of a registered schema safely in generated code', () => {
    const hostile = ['"', '\\', "'); throw new Error('injected'); ('", '`${process.exit(1)}`', '*/ throw 1 /*', '\u2028', '\u2029', '\n', 'é日🚀', '\ud800', 'constructor', 'toString', '__proto__x', '0', '42', 'a b']
    const type = 'test.codegen.hostile'
    registerEventData(type, Schema.Struct(Object.fromEntries(hostile.map((k) => [k, Schema.optional(Schema.Union([Schema.String, Schema.Number]))]))))
    const encoder = new EventEncoder()
    fc.assert(
      fc.property(shuffledObject(hostile.map((k) => [k, fc.oneof(anyString, anyNumber), false] as const)), (data) => {
        const event = makeEvent('src', type, data)
        const out = encoder.encode([event, event])
        expect(out.bytes.equals(Buffer.from(reference([event, event])))).toBe(true)
        expect(out.compiled).toBe(2)
        expect(out.generated).toBe(2)
      }),
      { numRuns: 300 },
    )
  })

  it('leaves the compiled path while Object.prototype is not plain (for...in would see what JSON.stringify does not)', () => {
    const encoder = new EventEncoder()
    const e = makeEvent('src', 'synthetic.tick', { seq: 1, generation: 1 })
    const proto = Object.prototype as Record<string, unknown>
    proto.polluted = 1
    try {
      const out = encoder.encode([e])
      expect(out.compiled).toBe(0)
      expect(out.bytes.toString()).toBe(reference([e]))
    } finally {
      delete proto.polluted
    }
    expect(encoder.encode([e]).compiled).toBe(1)
  })
})

describe('JSON writers', () => {
  const written = (f: (w: ByteWriter) => void) => {
    const w = new ByteWriter(4)
    f(w)
    return w.buf.subarray(0, w.at).toString('utf8')
  }

  it('writes every number as JSON.stringify does', () => {
    fc.assert(
      fc.property(fc.oneof(anyNumber, fc.double({ min: -1e25, max: 1e25 })), (n) => {
        expect(written((w) => writeNumber(w, n))).toBe(JSON.stringify(n))
      }),
      { numRuns: 5000 },
    )
  })

  it('writes every string as JSON.stringify does, byte for byte', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const w = new ByteWriter(4)
        writeString(w, s)
        expect(Buffer.from(w.buf.subarray(0, w.at)).equals(Buffer.from(JSON.stringify(s)))).toBe(true)
      }),
      { numRuns: 5000 },
    )
  })
})
