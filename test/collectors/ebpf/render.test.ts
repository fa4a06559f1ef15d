/**
 * The NDJSON the eBPF collector writes without objects (render.ts) against the object path it
 * replaces on the agent's hot path: `BatchDecoder.decode` -> the pump's `stampEvent` ->
 * `JSON.stringify`. Byte for byte, on crafted, fuzzed and real kernel records.
 */
import { spawn } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { CgroupResolver, type CgroupInfo } from '../../../src/collectors/ebpf/cgroup.js'
import { BatchDecoder, type CgroupLookup, CgroupIdsOnly } from '../../../src/collectors/ebpf/decode.js'
import { KernelBatch } from '../../../src/collectors/ebpf/kernel-batch.js'
import { renderNdjson } from '../../../src/collectors/ebpf/render.js'
import { type EventInput, stampEvent } from '../../../src/events/event.js'
import { eventIdPrefix } from '../../../src/events/id.js'
import { BpfSession, loadBpfAddon } from '../../../src/native/bpf-addon.js'
import { BootClock, COMM_LEN, encodeBatch, Exec, Exit, Hdr, Oom, Open, PATH_LEN, RECORD_SIZE, RecordKind, Tcp } from '../../../src/native/bpf-records.js'
import { NdjsonBatch } from '../../../src/outputs/ndjson.js'
import { eventsOf } from '../../../src/stream/deferred-batch.js'
import { cgroupRecord, execRecord, exitRecord, record, tcpRecord } from './records.js'

/** What the pump makes of decoded events: id `first + i`, then `source` (stampEvent's key order). */
function objectPath(decoder: BatchDecoder, buf: Buffer, first: number, source: string | undefined): string[] {
  return decoder.decode(buf).map((e, i) => {
    if (source === undefined) return JSON.stringify(e)
    const m = e as { id?: string }
    m.id = `${eventIdPrefix()}-${(first + i).toString(36)}`
    return JSON.stringify(stampEvent(e as EventInput, source))
  })
}

function lines(bytes: Buffer, offsets: Uint32Array, n: number): string[] {
  expect(offsets.length).toBe(n + 1)
  expect(offsets[n]).toBe(bytes.length)
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const line = bytes.subarray(offsets[i], offsets[i + 1])
    expect(line[line.length - 1]).toBe(10)
    out.push(line.toString('utf8', 0, line.length - 1))
  }
  return out
}

/** A resolver with awkward answers: quotes, backslashes, control characters, non-ASCII, k8s identity. */
class FixedCgroups implements CgroupLookup {
  constructor(private readonly answers: ReadonlyMap<number, CgroupInfo>) {}
  lookup(id: number): CgroupInfo {
    return this.answers.get(id % 5) ?? { id: String(id) }
  }
  learn(): void {}
}

const cid = 'a'.repeat(64)
const answers = new Map<number, CgroupInfo>([
  [0, { id: '0' }],
  [1, { id: '1', path: '/system.slice/ssh.service' }],
  [2, { id: '2', path: '/we"ird\\pa\nth/\u00e9\u2028\ud83d\ude00', containerId: cid, k8s: { containerId: cid } }],
  [3, { id: '3', path: `/kubepods/pod12345678-1234-1234-1234-123456789012/${cid}`, containerId: cid, podUid: '12345678-1234-1234-1234-123456789012', k8s: { containerId: cid, podUid: '12345678-1234-1234-1234-123456789012' } }],
])

const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 1n << 53n }), fc.constantFrom(0n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, (1n << 64n) - 1n))
const u32 = fc.integer({ min: 0, max: 0xffffffff })
/** Any bytes, often NUL-terminated early, often plain ASCII. */
const cbytes = (max: number) =>
  fc.oneof(
    fc.uint8Array({ maxLength: max }),
    fc.string({ maxLength: max }).map((s) => Buffer.from(s, 'utf8').subarray(0, max)),
    fc.constantFrom(Buffer.from('bash'), Buffer.from('a"b\\c'), Buffer.from([0xc3, 0xa9, 0xff, 0xe2, 0x82]), Buffer.from([1, 0x1f, 0x7f, 0x80])),
  )

const anyRecord = fc
  .record({
    kind: fc.constantFrom(RecordKind.exec, RecordKind.exit, RecordKind.tcp, RecordKind.oom, RecordKind.open, RecordKind.probe),
    tgid: u32,
    pid: u32,
    uid: u32,
    ts: u64,
    cgroup: fc.bigInt({ min: 0n, max: 1n << 40n }),
    comm: cbytes(COMM_LEN),
    a: u32,
    b: u32,
    c: u64,
    d: u64,
    e: u64,
    f: u64,
    s8: fc.uint8Array({ minLength: 2, maxLength: 2 }),
    family: fc.constantFrom(2, 10, 7),
    addrs: fc.oneof(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.constantFrom(
        Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Buffer.from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      ),
    ),
    text: cbytes(PATH_LEN),
  })
  .map((r) => {
    const b = Buffer.alloc(RECORD_SIZE[r.kind] as number)
    b.writeUInt16LE(r.kind, Hdr.kind)
    b.writeUInt16LE(b.length, Hdr.size)
    b.writeUInt32LE(r.tgid, Hdr.tgid)
    b.writeUInt32LE(r.pid, Hdr.pid)
    b.writeUInt32LE(r.uid, Hdr.uid)
    b.writeBigUInt64LE(r.ts, Hdr.ts)
    b.writeBigUInt64LE(r.cgroup, Hdr.cgroup)
    b.set(r.comm, Hdr.comm)
    switch (r.kind) {
      case RecordKind.exec:
        b.writeUInt32LE(r.a, Exec.ppid)
        b.set(r.text, Exec.filename)
        break
      case RecordKind.exit:
        b.writeUInt32LE(r.a, Exit.ppid)
        b.writeUInt32LE(r.b, Exit.exitCode)
        b.writeBigUInt64LE(r.c, Exit.duration)
        break
      case RecordKind.tcp:
        b.set(r.s8, Tcp.oldState)
        b.writeUInt16LE(r.family, Tcp.family)
        b.writeUInt16LE(r.a & 0xffff, Tcp.sport)
        b.writeUInt16LE(r.b & 0xffff, Tcp.dport)
        b.set(r.addrs, Tcp.saddr)
        b.writeBigUInt64LE(r.c, Tcp.duration)
        b.writeUInt32LE(r.a & 1, Tcp.ownerKnown)
        break
      case RecordKind.oom:
        b.writeUInt32LE(r.a, Oom.victimPid)
        b.writeInt32LE(r.b | 0, Oom.oomScoreAdj)
        b.writeBigUInt64LE(r.c, Oom.totalVm)
        b.writeBigUInt64LE(r.d, Oom.anonRss)
        b.writeBigUInt64LE(r.e, Oom.fileRss)
        b.writeBigUInt64LE(r.f, Oom.shmemRss)
        b.set(r.comm.subarray(0, COMM_LEN), Oom.victimComm)
        break
      case RecordKind.open:
        b.writeInt32LE(r.a | 0, Open.flags)
        b.writeUInt32LE(r.b, Open.mode)
        b.set(r.text, Open.path)
        break
    }
    return b
  })

describe('kernel records -> NDJSON without objects', () => {
  it('crafted records of every kind: each line is JSON.stringify of the stamped event', () => {
    const clock = new BootClock([1_700_000_000, 900_000_000])
    const cg = new FixedCgroups(answers)
    const buf = encodeBatch([
      execRecord({ tgid: 42, comm: 'curl', tsNs: 5_250_000_000n, cgroupId: 2n }, 1, '/usr/bin/curl'),
      exitRecord({ tgid: 42, comm: 'cr"ash\\' }, 0x80 | 11, 1n << 60n),
      tcpRecord({ tgid: 7, cgroupId: 3n }, { old: 2, now: 1, saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2], sport: 40000, dport: 443 }),
      tcpRecord({ tgid: 7, cgroupId: 1n }, { old: 2, now: 7, v6: true, saddr: [0x20, 1, 0xd, 0xb8], daddr: [], sport: 1, dport: 2 }),
      record(RecordKind.oom, undefined, { comm: 'java' }),
      record(RecordKind.open, undefined, { comm: '\u00e9t\u00e9' }),
      record(RecordKind.probe, undefined, { tsNs: (1n << 63n) + 12345n, cgroupId: 4n }),
      cgroupRecord(99n, '/not/an/event'),
    ])
    const scan = new BatchDecoder(clock, cg).scan(buf)
    expect(scan.count).toBe(7)
    const first = 1234567
    const rendered = renderNdjson(scan, 0, scan.count, first, 'eb"pf')
    expect(lines(rendered.bytes, rendered.offsets, 7)).toEqual(objectPath(new BatchDecoder(clock, cg), buf, first, 'eb"pf'))
    // Unstamped (what `events()` readers get before the pump) is JSON.stringify of the bare event.
    const bare = renderNdjson(scan, 0, scan.count, -1, undefined)
    expect(lines(bare.bytes, bare.offsets, 7)).toEqual(objectPath(new BatchDecoder(clock, cg), buf, 0, undefined))
    // Ids across base-36 carries ("z" -> "10", "zz" -> "100", ...), written without a division each.
    for (const start of [1, 34, 36 * 36 - 3, 36 ** 3 - 2, 36 ** 7 - 4, Number.MAX_SAFE_INTEGER - 10]) {
      const r = renderNdjson(scan, 0, scan.count, start, 'ebpf')
      expect(lines(r.bytes, r.offsets, 7)).toEqual(objectPath(new BatchDecoder(clock, cg), buf, start, 'ebpf'))
    }
    // Every line parses back to the event.
    for (const l of lines(rendered.bytes, rendered.offsets, 7)) expect(() => JSON.parse(l)).not.toThrow()
  })

  it('fuzzed records, clocks, cgroup answers, ids and sources: byte for byte the object path', () => {
    fc.assert(
      fc.property(
        fc.array(anyRecord, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 100 })),
        fc.string({ maxLength: 12 }),
        fc.boolean(),
        (records, sec, ns, first, source, idsOnly) => {
          const clock = new BootClock([sec, ns])
          const cg: CgroupLookup = idsOnly ? new CgroupIdsOnly() : new FixedCgroups(answers)
          const buf = encodeBatch(records)
          const scan = new BatchDecoder(clock, cg).scan(buf)
          const r = renderNdjson(scan, 0, scan.count, first, first < 0 ? undefined : source)
          expect(lines(r.bytes, r.offsets, scan.count)).toEqual(objectPath(new BatchDecoder(clock, cg), buf, first, first < 0 ? undefined : source))
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('a KernelBatch: stamped once, its slices keep their ids, its objects and its bytes agree', () => {
    const clock = new BootClock([1_700_000_000, 5])
    const records = Array.from({ length: 50 }, (_, i) => record(i % 2 ? RecordKind.probe : RecordKind.exit, undefined, { tgid: i, cgroupId: BigInt(i) }))
    const batch = new KernelBatch(new BatchDecoder(clock, new FixedCgroups(answers)).scan(encodeBatch(records)))
    batch.stamp('ebpf')
    expect(() => batch.stamp('again')).toThrow(/stamped twice/)
    const whole = batch.ndjson()
    const all = lines(whole.bytes, whole.offsets, 50)
    expect(batch.events().map((e) => JSON.stringify(e))).toEqual(all)
    const ids = new Set(batch.events().map((e) => e.id))
    expect(ids.size).toBe(50)
    const part = batch.slice(10, 30)
    const p = part.ndjson()
    expect(lines(p.bytes, p.offsets, 20)).toEqual(all.slice(10, 30))
    expect(part.events().map((e) => JSON.stringify(e))).toEqual(all.slice(10, 30))
    // The shared NDJSON form: the batch, and the very array it materialised, reuse these bytes;
    // any other array (a processor's copy) is serialised from its objects.
    expect(NdjsonBatch.from(batch).bytes).toBe(whole.bytes)
    expect(NdjsonBatch.from(batch.events()).bytes).toBe(whole.bytes)
    const copy = [...batch.events()]
    expect(NdjsonBatch.from(copy).bytes).not.toBe(whole.bytes)
    expect(NdjsonBatch.from(copy).bytes.equals(whole.bytes)).toBe(true)
    expect(eventsOf(batch)).toBe(batch.events())
  })

  it('an unstamped KernelBatch materialised for an events() reader is not mistaken for stamped bytes', () => {
    const clock = new BootClock([1_700_000_000, 5])
    const batch = new KernelBatch(new BatchDecoder(clock, new CgroupIdsOnly()).scan(encodeBatch([record(RecordKind.probe)])))
    const events = batch.events()
    stampEvent(events[0] as EventInput, 'ebpf')
    // The pump stamped the objects themselves: the NDJSON must come from them, with id and source.
    expect(NdjsonBatch.from(events).lines[0]).toBe(JSON.stringify(events[0]))
    expect(NdjsonBatch.from(events).lines[0]).toContain('"source":"ebpf"')
  })
})

describe('real kernel records (root, this kernel)', () => {
  it('exec, exit, tcp and openat records of real processes: byte for byte the object path', async () => {
    const loaded = loadBpfAddon()
    if (Result.isFailure(loaded)) throw loaded.failure
    const addon = loaded.success
    const session = BpfSession.create(addon, {
      ringBytes: 1 << 22,
      wakeupBytes: 1 << 16,
      drainIntervalMs: 5,
      batchBytes: 65536,
      maxBatchesInFlight: 64,
      programs: ['exec', 'exit', 'tcp', 'openat', 'cgroup'],
      openPrefixes: ['/etc/host'],
      probePid: 0,
    })
    const raw: Buffer[] = []
    const server = createServer((s) => s.end())
    try {
      const opened = session.open()
      expect(opened.attached).toEqual(expect.arrayContaining(['exec', 'exit', 'tcp', 'openat']))
      session.start((batch) => {
        if (batch !== null) {
          raw.push(batch)
          session.release(1)
        }
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve, reject) => {
          const c = spawn('/bin/sh', ['-c', `cat /etc/hostname /etc/hosts > /dev/null; exit ${i % 4}`], { stdio: 'ignore' })
          c.on('error', reject)
          c.on('exit', () => resolve())
        })
        await new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1', () => s.end())
          s.on('close', () => resolve())
          s.on('error', () => resolve())
        })
        readFileSync('/etc/hostname')
      }
      await new Promise((r) => setTimeout(r, 200))
    } finally {
      session.stop()
      await new Promise((r) => setTimeout(r, 100))
      session.close()
      await new Promise<void>((r) => server.close(() => r()))
    }
    const clock = new BootClock(addon.clockOffset())
    // One resolver for both paths: the scan resolves (reading /proc), the decode then hits the cache.
    const resolver = new CgroupResolver()
    const scanner = new BatchDecoder(clock, resolver)
    const decoder = new BatchDecoder(clock, resolver)
    const kinds = new Map<string, number>()
    let total = 0
    let first = 1
    for (const buf of raw) {
      const scan = scanner.scan(buf)
      const r = renderNdjson(scan, 0, scan.count, first, 'ebpf')
      const got = lines(r.bytes, r.offsets, scan.count)
      expect(got).toEqual(objectPath(decoder, buf, first, 'ebpf'))
      for (const l of got) {
        const t = (JSON.parse(l) as { type: string }).type
        kinds.set(t, (kinds.get(t) ?? 0) + 1)
      }
      total += scan.count
      first += scan.count
    }
    expect(total).toBeGreaterThan(60)
    for (const t of ['kernel.process.exec', 'kernel.process.exit', 'kernel.file.open']) expect(kinds.get(t) ?? 0).toBeGreaterThan(0)
    expect([...kinds.keys()].some((t) => t.startsWith('kernel.tcp.'))).toBe(true)
    expect(resolver.lookups + resolver.misses).toBeGreaterThan(0)
  }, 60_000)
})
