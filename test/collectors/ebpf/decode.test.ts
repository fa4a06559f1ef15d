import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BatchDecoder, findCgroup2Mount, parseCgroupPath, parseEbpfConfig } from '../../../src/collectors/ebpf/index.js'
import { CgroupIdsOnly, type CgroupLookup } from '../../../src/collectors/ebpf/decode.js'
import { defaultRingBufferBytes } from '../../../src/collectors/ebpf/config.js'
import { availableParallelism } from 'node:os'
import { BATCH_MAGIC, BootClock, Cgroup, encodeBatch, Hdr, ipv6, RecordKind } from '../../../src/native/bpf-records.js'
import { Result } from 'effect'
import { cgroupRecord, execRecord, exitRecord, oomRecord, openRecord, record, tcpRecord } from './records.js'

const clock = new BootClock([1_700_000_000, 900_000_000])
const decoder = () => new BatchDecoder(clock, new CgroupIdsOnly())

describe('ebpf batch decoder', () => {
  it('decodes exec, exit and tcp records into events', () => {
    const d = decoder()
    const events = d.decode(
      encodeBatch([
        execRecord({ tgid: 42, comm: 'curl', tsNs: 5_250_000_000n, cgroupId: 77n }, 1, '/usr/bin/curl'),
        exitRecord({ tgid: 42, comm: 'curl' }, (3 << 8) | 0, 12_345n),
        exitRecord({ tgid: 43, comm: 'crash' }, 0x80 | 11, 1n),
        tcpRecord({ tgid: 42 }, { old: 2, now: 1, saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2], sport: 40000, dport: 443 }),
      ]),
    )
    expect(events.map((e) => e.type)).toEqual([
      'kernel.process.exec',
      'kernel.process.exit',
      'kernel.process.exit',
      'kernel.tcp.connect',
    ])
    // 1_700_000_000.9 s + 5.25 s of boot time
    expect(events[0]?.timestamp).toBe('1700000006150000000')
    expect(events[0]?.data).toMatchObject({ pid: 42, comm: 'curl', ppid: 1, filename: '/usr/bin/curl', cgroupId: '77' })
    expect(events[1]?.data).toMatchObject({ exitCode: 3, signal: 0, coreDumped: false, durationNs: 12345 })
    expect(events[2]).toMatchObject({ severity: 'warning', data: { exitCode: 0, signal: 11, coreDumped: true } })
    expect(events[3]?.data).toMatchObject({ saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 40000, dport: 443, family: 'ipv4' })
    expect(d.counters).toMatchObject({ records: 4, events: 4, malformed: 0 })
  })

  it('counts and skips short, oversized, unknown and mislabelled records, then goes on', () => {
    const d = decoder()
    const mislabelled = record(RecordKind.exit)
    mislabelled.writeUInt16LE(999, 2)
    const events = d.decode(
      encodeBatch([
        Buffer.alloc(10),
        record(RecordKind.probe, 48, { tgid: 1 }),
        record(42, 48),
        record(RecordKind.exec, 64),
        mislabelled,
        record(RecordKind.probe, 48, { tgid: 2 }),
      ]),
    )
    expect(events.map((e) => (e.data as { pid: number }).pid)).toEqual([1, 2])
    expect(d.counters).toMatchObject({ records: 6, events: 2, malformed: 4, unknownKind: 1, badSize: 3 })
  })

  it('a frame length past the end: the rest of the claimed records count as malformed', () => {
    const d = decoder()
    const batch = encodeBatch([record(RecordKind.probe), record(RecordKind.probe), record(RecordKind.probe)])
    batch.writeUInt32LE(100_000, 8 + 56) // second frame claims far more than is there
    expect(d.decode(batch)).toHaveLength(1)
    expect(d.counters).toMatchObject({ records: 3, events: 1, truncated: 2, malformed: 2 })
  })

  it('a batch with a bad header or too short is counted, not thrown', () => {
    const d = decoder()
    expect(d.decode(Buffer.alloc(3))).toEqual([])
    const bad = encodeBatch([record(RecordKind.probe)])
    bad.writeUInt32LE(0xdeadbeef, 0)
    expect(d.decode(bad)).toEqual([])
    expect(d.counters).toMatchObject({ badBatches: 2, malformed: 2 })
  })

  it('never throws on arbitrary bytes, and every claimed record is an event, malformed or a cgroup announcement', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(64), (bytes, claimed) => {
        const buf = Buffer.alloc(8 + bytes.length)
        buf.writeUInt32LE(BATCH_MAGIC, 0)
        buf.writeUInt32LE(claimed, 4)
        Buffer.from(bytes).copy(buf, 8)
        const d = decoder()
        const events = d.decode(buf)
        expect(events.length + d.counters.malformed + d.counters.cgroups).toBe(claimed)
      }),
      { numRuns: 500 },
    )
  })

  it('never throws on corrupted valid batches', () => {
    const good = encodeBatch([
      execRecord({ tgid: 1 }, 0, '/bin/x'),
      record(RecordKind.probe),
      tcpRecord({}, { old: 3, now: 1, v6: true, saddr: [], daddr: [], sport: 1, dport: 2 }),
    ])
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 20 }), (flips) => {
        const b = Buffer.from(good)
        for (const [at, v] of flips) b[at] = v
        const d = decoder()
        const events = d.decode(b)
        if (b.readUInt32LE(0) === BATCH_MAGIC) {
          expect(events.length + d.counters.malformed + d.counters.cgroups).toBe(b.readUInt32LE(4))
        }
      }),
      { numRuns: 500 },
    )
  })

  it('cgroup announcements teach the resolver and are no events; a cut-short or misframed one is counted unusable', () => {
    const learned: [number, string][] = []
    const seen: number[] = []
    const d = new BatchDecoder(clock, {
      lookup: (id) => {
        seen.push(id)
        const hit = learned.find(([i]) => i === id)
        return hit ? { id: String(id), path: hit[1] } : { id: String(id) }
      },
      learn: (id, path) => learned.push([id, path]),
    })
    const containerPath = `/kubepods.slice/cri-containerd-${'b'.repeat(64)}.scope`
    const events = d.decode(
      encodeBatch([
        cgroupRecord(9001n, containerPath),
        execRecord({ tgid: 7, cgroupId: 9001n }, 1, '/bin/true'),
        cgroupRecord(9002n, `/${'x'.repeat(600)}`),
        record(RecordKind.cgroup, 100),
      ]),
    )
    expect(learned).toEqual([[9001, containerPath]])
    expect(events).toHaveLength(1)
    expect(events[0]?.data).toMatchObject({ cgroupId: '9001', cgroupPath: containerPath })
    expect(seen).toEqual([9001])
    expect(d.counters).toMatchObject({ records: 4, events: 1, malformed: 0, cgroups: 3, cgroupsUnusable: 2 })
  })

  it('converts boot-time stamps exactly, also beyond 2^53 ns of uptime', () => {
    const view = (ns: bigint) => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64LE(ns)
      return new DataView(b.buffer, b.byteOffset, 8)
    }
    const offset = 1_700_000_000n * 1_000_000_000n + 900_000_000n
    for (const ns of [0n, 1n, 999_999_999n, 100_000_000_000n, 2n ** 53n - 1n, 2n ** 53n + 12345n, 2n ** 60n]) {
      expect(clock.stamp(view(ns), 0)).toBe((offset + ns).toString())
    }
  })

  it('formats IPv6 addresses the RFC 5952 way', () => {
    const b = (groups: number[]) => {
      const buf = Buffer.alloc(16)
      groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2))
      return buf
    }
    expect(ipv6(b([0, 0, 0, 0, 0, 0, 0, 1]), 0)).toBe('::1')
    expect(ipv6(b([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), 0)).toBe('2001:db8::1:0:0:1')
    expect(ipv6(b([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]), 0)).toBe('::ffff:127.0.0.1')
    expect(ipv6(b([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 0)).toBe('fe80::')
    expect(ipv6(b([1, 2, 3, 4, 5, 6, 7, 8]), 0)).toBe('1:2:3:4:5:6:7:8')
  })
})

/** The kernel's TCP states (include/net/tcp_states.h), by number. */
const KERNEL_TCP_STATES = ['UNKNOWN', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV']

describe('ebpf batch decoder: every field of every record kind', () => {
  const hdr = { tgid: 4242, pid: 4243, uid: 1000, comm: 'worker' }
  const common = { pid: 4242, tid: 4243, uid: 1000, comm: 'worker', cgroupId: '1' }

  it('probe and exec: header fields, severity, filename', () => {
    const [probe, exec] = decoder().decode(encodeBatch([record(RecordKind.probe, undefined, hdr), execRecord(hdr, 77, '/usr/bin/env')]))
    expect(probe).toEqual({ type: 'kernel.probe.hit', timestamp: '1700000001900000000', severity: 'debug', data: { ...common, cgroupPath: undefined } })
    expect(exec).toMatchObject({ type: 'kernel.process.exec', severity: 'info', data: { ...common, ppid: 77, filename: '/usr/bin/env' } })
  })

  it('exit: code and signal from the wait status, severity warning only when signalled', () => {
    const d = decoder()
    const [clean, signalled, plain] = d.decode(
      encodeBatch([exitRecord(hdr, (7 << 8) | 0, 2n ** 40n + 5n), exitRecord(hdr, (5 << 8) | 9, 1n), exitRecord(hdr, 0, 0n)]),
    )
    expect(clean).toMatchObject({ severity: 'info', data: { ...common, ppid: 0, exitCode: 7, signal: 0, coreDumped: false, durationNs: 2 ** 40 + 5 } })
    expect(signalled).toMatchObject({ severity: 'warning', data: { exitCode: 0, signal: 9, coreDumped: false } })
    expect(plain).toMatchObject({ severity: 'info', data: { exitCode: 0, signal: 0 } })
    const withPpid = exitRecord(hdr, 0, 0n)
    withPpid.writeUInt32LE(31337, 48)
    expect(d.decode(encodeBatch([withPpid]))[0]?.data).toMatchObject({ ppid: 31337 })
  })

  it('tcp: accept, connect, connect failed and close, with their states, addresses and duration', () => {
    const tcp = (old: number, now: number, extra: { v6?: boolean; ownerKnown?: number } = {}) =>
      tcpRecord(hdr, { old, now, saddr: [192, 168, 1, 2], daddr: [10, 9, 8, 7], sport: 5555, dport: 80, durationNs: 123_456n, ...extra })
    const v6 = tcpRecord(hdr, {
      old: 7,
      now: 2,
      v6: true,
      saddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      daddr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
      sport: 1,
      dport: 443,
    })
    const events = decoder().decode(encodeBatch([tcp(3, 1), tcp(2, 1), tcp(2, 7), tcp(1, 8, { ownerKnown: 0 }), tcp(13, 200), v6]))
    expect(events.map((e) => [e.type, e.severity])).toEqual([
      ['kernel.tcp.accept', 'info'],
      ['kernel.tcp.connect', 'info'],
      ['kernel.tcp.connect_failed', 'warning'],
      ['kernel.tcp.close', 'info'],
      ['kernel.tcp.close', 'info'],
      ['kernel.tcp.close', 'info'],
    ])
    expect(events[0]?.data).toEqual({
      ...common,
      cgroupPath: undefined,
      family: 'ipv4',
      saddr: '192.168.1.2',
      sport: 5555,
      daddr: '10.9.8.7',
      dport: 80,
      oldState: 'SYN_RECV',
      newState: 'ESTABLISHED',
      durationNs: 123_456,
      ownerKnown: true,
    })
    expect(events[3]?.data).toMatchObject({ oldState: 'ESTABLISHED', newState: 'CLOSE_WAIT', ownerKnown: false })
    // States the kernel may add later are shown by number.
    expect(events[4]?.data).toMatchObject({ oldState: '13', newState: '200' })
    expect(events[5]?.data).toMatchObject({ family: 'ipv6', saddr: '2001:db8::1', daddr: 'fe80::2', oldState: 'CLOSE', newState: 'SYN_SENT', dport: 443 })
  })

  it('tcp states are named as the kernel numbers them', () => {
    const records = KERNEL_TCP_STATES.map((_, i) => tcpRecord(hdr, { old: i, now: (i + 1) % KERNEL_TCP_STATES.length, saddr: [], daddr: [], sport: 0, dport: 0 }))
    const events = decoder().decode(encodeBatch(records))
    expect(events.map((e) => (e.data as { oldState: string }).oldState)).toEqual(KERNEL_TCP_STATES)
  })

  it('oom kill: victim, memory figures and score, at error severity', () => {
    const [e] = decoder().decode(
      encodeBatch([
        oomRecord(hdr, { victimPid: 999, victimComm: 'hog', totalVmKb: 1_000_001n, anonRssKb: 2_000_002n, fileRssKb: 3_003n, shmemRssKb: 44n, oomScoreAdj: -998 }),
      ]),
    )
    expect(e).toEqual({
      type: 'kernel.oom.kill',
      timestamp: '1700000001900000000',
      severity: 'error',
      data: { ...common, cgroupPath: undefined, victimPid: 999, victimComm: 'hog', totalVmKb: 1_000_001, anonRssKb: 2_000_002, fileRssKb: 3_003, shmemRssKb: 44, oomScoreAdj: -998 },
    })
  })

  it('file open: path, flags (signed) and mode, at debug severity', () => {
    const [e] = decoder().decode(encodeBatch([openRecord(hdr, { path: '/etc/passwd', flags: -2147483072, mode: 0o644 })]))
    expect(e).toEqual({
      type: 'kernel.file.open',
      timestamp: '1700000001900000000',
      severity: 'debug',
      data: { ...common, cgroupPath: undefined, path: '/etc/passwd', flags: -2147483072, mode: 0o644 },
    })
  })

  it('carries the Kubernetes context the cgroup lookup found, and none when it found none', () => {
    const k8s = { containerId: 'c'.repeat(64), podUid: 'u' }
    const lookup: CgroupLookup = { lookup: (id) => (id === 5 ? { id: '5', path: '/p', k8s } : { id: String(id) }), learn: () => {} }
    const [inPod, outside] = new BatchDecoder(clock, lookup).decode(
      encodeBatch([record(RecordKind.probe, undefined, { cgroupId: 5n }), record(RecordKind.probe, undefined, { cgroupId: 6n })]),
    )
    expect(inPod?.k8s).toEqual(k8s)
    expect(inPod?.data).toMatchObject({ cgroupId: '5', cgroupPath: '/p' })
    expect(outside !== undefined && 'k8s' in outside).toBe(false)
  })

  it('reads each comm afresh when any of its bytes changed (the one-entry cache)', () => {
    const comms = ['aaaabbbbccccddd', 'aaaaXbbbccccddd', 'aaaaXbbbYcccddd', 'aaaaXbbbYcccZdd', 'WaaaXbbbYcccZdd', 'WaaaXbbbYcccZdd', 'sh']
    const events = decoder().decode(encodeBatch(comms.map((comm) => record(RecordKind.probe, undefined, { comm }))))
    expect(events.map((e) => (e.data as { comm: string }).comm)).toEqual(comms)
  })

  it('re-anchors wall time with setClock', () => {
    const d = decoder()
    d.setClock(new BootClock([1_800_000_000, 0]))
    expect(d.decode(encodeBatch([record(RecordKind.probe, undefined, { tsNs: 5n })]))[0]?.timestamp).toBe('1800000000000000005')
  })

  it('kind 0 is unknown, a record sized for its kind but labelled otherwise (or framed longer) is bad, an empty last frame is bad', () => {
    const d = decoder()
    const longerFrame = Buffer.concat([execRecord({}, 1, '/x'), Buffer.alloc(8)])
    const events = d.decode(encodeBatch([record(0, 48), longerFrame, record(RecordKind.probe), Buffer.alloc(0)]))
    expect(events).toHaveLength(1)
    expect(d.counters).toMatchObject({ records: 4, events: 1, malformed: 3, unknownKind: 1, badSize: 2, truncated: 0 })
  })

  it('a cgroup announcement is usable only when both its frame length and its size field are right and its path is not empty', () => {
    const learned: [number, string][] = []
    const d = new BatchDecoder(clock, { lookup: (id) => ({ id: String(id) }), learn: (id, path) => learned.push([id, path]) })
    const wrongSizeField = cgroupRecord(1n, '/a')
    wrongSizeField.writeUInt16LE(100, Hdr.size)
    const longerFrame = Buffer.concat([cgroupRecord(2n, '/b'), Buffer.alloc(8)])
    const emptyPath = cgroupRecord(3n, '')
    const longest = cgroupRecord(4n, `/${'y'.repeat(509)}`)
    const good = cgroupRecord(5n, '/kubepods.slice/x.scope')
    expect(longest.readUInt32LE(Cgroup.pathLen)).toBe(510)
    expect(d.decode(encodeBatch([wrongSizeField, longerFrame, emptyPath, longest, good]))).toEqual([])
    expect(learned).toEqual([
      [4, `/${'y'.repeat(509)}`],
      [5, '/kubepods.slice/x.scope'],
    ])
    expect(d.counters).toMatchObject({ records: 5, events: 0, malformed: 0, cgroups: 5, cgroupsUnusable: 3 })
  })
})

describe('cgroup lookups', () => {
  it('asks the resolver for each event record\'s cgroup id and process id', () => {
    const asked: [number, number][] = []
    const d = new BatchDecoder(clock, { lookup: (id, tgid) => (asked.push([id, tgid]), { id: String(id) }), learn: () => {} })
    d.decode(encodeBatch([record(RecordKind.probe, undefined, { tgid: 0x01020304, pid: 9, cgroupId: 77n }), execRecord({ tgid: 4242, cgroupId: 78n }, 1, '/bin/x')]))
    expect(asked).toEqual([
      [77, 0x01020304],
      [78, 4242],
    ])
  })
})

describe('CgroupIdsOnly', () => {
  it('answers the id as text, the same object for a repeated id, and forgets all once it holds more than 16384', () => {
    const ids = new CgroupIdsOnly()
    const first = ids.lookup(0)
    expect(first).toEqual({ id: '0' })
    expect(ids.lookup(0)).toBe(first)
    for (let i = 1; i <= 16384; i++) ids.lookup(i)
    // 16385 held: still cached.
    expect(ids.lookup(0)).toBe(first)
    ids.lookup(16385)
    const again = ids.lookup(0)
    expect(again).not.toBe(first)
    expect(again).toEqual({ id: '0' })
    ids.learn()
  })
})

describe('cgroup paths', () => {
  const id = 'a'.repeat(64)
  it.each([
    [`/system.slice/docker-${id}.scope`, id, undefined],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_12ab_34cd_56ef_1234567890ab.slice/cri-containerd-${id}.scope`, id, '1234abcd-12ab-34cd-56ef-1234567890ab'],
    [`/kubepods/besteffort/pod1234abcd-12ab-34cd-56ef-1234567890ab/${id}`, id, '1234abcd-12ab-34cd-56ef-1234567890ab'],
    [`/machine.slice/libpod-${id}.scope/container`, id, undefined],
    ['/init.scope', undefined, undefined],
    ['/user.slice/user-0.slice/session-1.scope', undefined, undefined],
  ])('%s', (path, containerId, podUid) => {
    expect(parseCgroupPath(path)).toEqual({
      ...(containerId ? { containerId } : {}),
      ...(podUid ? { podUid } : {}),
    })
  })

  it('finds the cgroup2 mount in mountinfo (unified and hybrid)', () => {
    expect(findCgroup2Mount('30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n')).toBe('/sys/fs/cgroup')
    expect(
      findCgroup2Mount(
        '31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n40 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n',
      ),
    ).toBe('/sys/fs/cgroup/unified')
    expect(findCgroup2Mount('')).toBeUndefined()
  })
})

describe('ebpf config', () => {
  it('fills defaults', () => {
    const r = parseEbpfConfig({})
    expect(Result.isSuccess(r) && r.success).toMatchObject({
      programs: { exec: true, exit: true, tcp: true, oom: true, openat: false },
      ringBufferBytes: defaultRingBufferBytes(availableParallelism()),
    })
  })

  it('sizes the default ring at 1 MiB per CPU, at least 4 MiB, a power of two', () => {
    const MiB = 1 << 20
    expect([1, 2, 4, 5, 8, 9, 17, 64, 96, 4096].map((cpus) => defaultRingBufferBytes(cpus) / MiB)).toEqual([4, 4, 4, 8, 8, 16, 32, 64, 128, 1024])
  })

  it.each([
    [{ ringBufferBytes: 5000 }, 'ringBufferBytes'],
    [{ programs: { exec: 'yes' } }, 'exec'],
    [{ openatPrefixes: ['relative/'] }, 'openatPrefixes'],
    [{ openatPrefixes: [] }, 'openatPrefixes'],
    [{ bogus: 1 }, 'bogus'],
  ])('rejects %j naming the path', (input, path) => {
    const r = parseEbpfConfig(input)
    expect(Result.isFailure(r)).toBe(true)
    if (Result.isFailure(r)) expect(r.failure.message).toContain(path)
  })
})
