import * as Result from 'effect/Result'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import {
  type ChainRule,
  type CorrelationData,
  correlateProcessor,
  correlationKey,
  makeEvent,
  nsFromMillis,
  ProcessorChain,
  processorProblems,
  type Severity,
  type TapioEvent,
  validateEvent,
} from '../../src/index.js'

/** The correlation engine on a driven clock: event times and the stage's `now` are both ours. */

const T0 = 1_700_000_000_000
const CID = 'a'.repeat(64)
const CID2 = 'b'.repeat(64)
const POD = '11111111-2222-3333-4444-555555555555'

function at(ms: number, source: string, type: string, data: Record<string, unknown>, extra: { k8s?: Record<string, string>; severity?: Severity } = {}): TapioEvent {
  return makeEvent(source, type, data as never, { timestamp: nsFromMillis(ms), severity: extra.severity ?? 'info', ...(extra.k8s ? { k8s: extra.k8s } : {}) })
}

const podRef = { namespace: 'shop', name: 'cart-1', uid: POD }
const kernelOom = (ms: number, cid = CID) =>
  at(ms, 'ebpf', 'kernel.oom.kill', { pid: 42, tid: 42, uid: 0, comm: 'java', cgroupId: '7', victimPid: 42, victimComm: 'java', totalVmKb: 1, anonRssKb: 65536, fileRssKb: 0, shmemRssKb: 0, oomScoreAdj: 0 }, { k8s: { containerId: cid }, severity: 'error' })
const k8sOom = (ms: number, cid = CID) =>
  at(ms, 'kubernetes', 'k8s.pod.oom_killed', { ...podRef, container: 'app', restartCount: 0, exitCode: 137 }, { k8s: { namespace: 'shop', pod: 'cart-1', podUid: POD, container: 'app', containerId: `containerd://${cid}` }, severity: 'error' })
const restart = (ms: number, count = 1) =>
  at(ms, 'kubernetes', 'k8s.pod.container_restarted', { ...podRef, container: 'app', restartCount: count, previousRestartCount: count - 1, lastTerminationReason: 'OOMKilled', exitCode: 137 }, { k8s: { namespace: 'shop', pod: 'cart-1', podUid: POD, container: 'app' }, severity: 'warning' })
const crashLoop = (ms: number) =>
  at(ms, 'kubernetes', 'k8s.pod.crash_loop_backoff', { ...podRef, container: 'app', reason: 'CrashLoopBackOff', restartCount: 2 }, { k8s: { namespace: 'shop', pod: 'cart-1', podUid: POD, container: 'app' }, severity: 'error' })

function setup(o: Parameters<typeof correlateProcessor>[0] = {}) {
  const clock = new ManualClock(T0)
  const p = correlateProcessor(o)
  const chain = new ProcessorChain([p])
  const out: TapioEvent[] = []
  const run = (...events: TapioEvent[]) => {
    const r = chain.run(events, clock.now())
    out.push(...r.events)
    return r.events
  }
  const emitted = () => out.filter((e) => e.type.startsWith('tapio.correlation.'))
  const stats = () => p.statistics?.() ?? {}
  return { clock, p, chain, run, out, emitted, stats }
}

const d = (e: TapioEvent | undefined) => e?.data as CorrelationData

describe('correlate: the OOM chain', () => {
  it('one incident when the kernel kill and the Kubernetes OOMKilled meet, then an update per later member', () => {
    const s = setup()
    const k = kernelOom(T0)
    const o = k8sOom(T0 + 400)
    expect(s.run(k)).toEqual([k])
    s.clock.advance(500)
    const second = s.run(o)
    // The incident follows the event that completed it, in the same batch.
    expect(second.map((e) => e.type)).toEqual(['k8s.pod.oom_killed', 'tapio.correlation.incident'])
    const incident = second[1] as TapioEvent
    expect(incident).toMatchObject({ source: 'correlate', severity: 'error', timestamp: nsFromMillis(T0 + 500), entity: { kind: 'Pod', name: 'cart-1', namespace: 'shop', uid: POD } })
    expect(incident.k8s).toEqual({ containerId: CID, namespace: 'shop', pod: 'cart-1', podUid: POD, container: 'app' })
    expect(d(incident)).toMatchObject({
      chain: 'oom-kill',
      incident: incident.id,
      added: [k.id, o.id],
      complete: false,
      steps: ['kernel.oom.kill', 'k8s.pod.oom_killed', 'k8s.pod.container_restarted', 'k8s.pod.crash_loop_backoff'],
      keys: [`container:${CID}`, `pod:${POD}/app`],
      firstTimestamp: k.timestamp,
      lastTimestamp: o.timestamp,
    })
    expect(d(incident).members.map((m) => [m.step, m.id, m.source])).toEqual([
      ['kernel.oom.kill', k.id, 'ebpf'],
      ['k8s.pod.oom_killed', o.id, 'kubernetes'],
    ])
    expect(d(incident).summary).toBe('kernel OOM-killed java (pid 42, 64 MiB anon) in container app of pod shop/cart-1; Kubernetes reports OOMKilled (exit 137)')

    const r = restart(T0 + 2000)
    const c = crashLoop(T0 + 30_000)
    s.run(r)
    s.run(c)
    const [, u1, u2] = s.emitted()
    expect(u1?.type).toBe('tapio.correlation.updated')
    expect(d(u1)).toMatchObject({ incident: incident.id, added: [r.id], complete: false })
    expect(d(u2)).toMatchObject({ incident: incident.id, added: [c.id], complete: true })
    expect(d(u2).members.map((m) => m.id)).toEqual([k.id, o.id, r.id, c.id])
    expect(s.emitted().filter((e) => e.type === 'tapio.correlation.incident')).toHaveLength(1)
    expect(s.stats()).toMatchObject({ tracked: 1, members: 4, incidents: 1, updates: 2, emitted: 3, expired: 0, evicted: 0 })
    // Every emitted event is a valid event of the vocabulary.
    for (const e of s.emitted()) expect(Result.isSuccess(validateEvent(JSON.parse(JSON.stringify(e))))).toBe(true)
  })

  it('links members that arrive in any order, joining partial instances into one incident', () => {
    const s = setup()
    const r = restart(T0 + 1000)
    const c = crashLoop(T0 + 1500)
    const k = kernelOom(T0)
    const o = k8sOom(T0 + 200)
    // The restart (pod key) and the kernel kill (container key) share no key: two open instances.
    s.run(r, c)
    s.run(k)
    expect(s.emitted().map((e) => e.type)).toEqual(['tapio.correlation.incident'])
    expect(d(s.emitted()[0]).added).toEqual([r.id, c.id])
    expect(s.stats()).toMatchObject({ tracked: 2 })
    // The OOMKilled names both keys: it joins the kernel kill to the incident.
    s.run(o)
    const update = s.emitted()[1]
    expect(update?.type).toBe('tapio.correlation.updated')
    expect(d(update).incident).toBe(s.emitted()[0]?.id)
    expect(new Set(d(update).added)).toEqual(new Set([k.id, o.id]))
    expect(d(update).members.map((m) => m.step)).toEqual(['kernel.oom.kill', 'k8s.pod.oom_killed', 'k8s.pod.container_restarted', 'k8s.pod.crash_loop_backoff'])
    expect(d(update).complete).toBe(true)
    expect(s.stats()).toMatchObject({ tracked: 1, merged: 1, incidents: 1, updates: 1 })
  })

  it('one incident per chain instance: a second OOM of the same container after its restart is a new incident', () => {
    const s = setup()
    s.run(kernelOom(T0), k8sOom(T0 + 100), restart(T0 + 1000, 1))
    // The restarted container has a new id; it is OOM-killed again.
    const k2 = kernelOom(T0 + 20_000, CID2)
    const o2 = k8sOom(T0 + 20_100, CID2)
    s.run(k2, o2)
    const incidents = s.emitted().filter((e) => e.type === 'tapio.correlation.incident')
    expect(incidents).toHaveLength(2)
    expect(d(incidents[1]).added).toEqual([k2.id, o2.id])
    expect(d(incidents[1]).incident).not.toBe(d(incidents[0]).incident)
  })

  it('links only within the window (event time), and forgets an idle instance after it (processing time)', () => {
    const s = setup({ windowMs: 10_000 })
    s.run(kernelOom(T0))
    // Ten seconds and a bit later by its own timestamp: not the same failure.
    s.run(k8sOom(T0 + 10_001))
    expect(s.emitted()).toEqual([])
    expect(s.stats()).toMatchObject({ tracked: 2, keys: 3 })
    s.clock.advance(10_000)
    s.run(at(s.clock.now(), 'x', 'x.y', {}))
    expect(s.stats()).toMatchObject({ tracked: 2, expired: 0 })
    s.clock.advance(1)
    s.run(at(s.clock.now(), 'x', 'x.y', {}))
    expect(s.stats()).toMatchObject({ tracked: 0, keys: 0, expired: 2 })
    // Its partner arriving after the instance was forgotten opens a new one: no incident.
    s.run(k8sOom(T0 + 5000))
    expect(s.emitted()).toEqual([])
  })

  it('tracks at most maxKeys keys, evicting the least recently active instance, and counts it', () => {
    const s = setup({ maxKeys: 4 })
    const ids = ['c', 'd', 'e', 'f', '0'].map((x) => x.repeat(64))
    for (const [i, id] of ids.entries()) {
      s.clock.advance(10)
      s.run(kernelOom(T0 + i, id))
    }
    expect(s.stats()).toMatchObject({ tracked: 4, keys: 4, evicted: 1 })
    // The first kill was evicted: its OOMKilled finds nothing. The last one still links.
    s.run(k8sOom(T0 + 100, ids[0]))
    expect(s.emitted()).toEqual([])
    s.run(k8sOom(T0 + 100, ids[4]))
    expect(s.emitted()).toHaveLength(1)
    expect((s.stats().keys ?? 0) <= 4).toBe(true)
    expect(s.stats().evicted).toBeGreaterThan(1)
  })

  it('leaves a kill outside any container and a restart for another reason alone', () => {
    const s = setup()
    const host = at(T0, 'ebpf', 'kernel.oom.kill', { victimPid: 1, victimComm: 'x' })
    const other = at(T0, 'kubernetes', 'k8s.pod.container_restarted', { ...podRef, container: 'app', restartCount: 1, previousRestartCount: 0, lastTerminationReason: 'Error' })
    expect(s.run(host, other)).toEqual([host, other])
    expect(s.stats()).toMatchObject({ tracked: 0, members: 0 })
  })
})

describe('correlate: the veth chain', () => {
  const netns = 'cni-5f2a'
  const sandbox = 'f'.repeat(64)
  const created = (ms: number, snapshot = false) => at(ms, 'cni', 'network.netns.created', { name: netns, path: `/var/run/netns/${netns}`, inode: 4026532000, ...(snapshot ? { snapshot } : {}) })
  const veth = (ms: number) =>
    at(ms, 'cni', 'network.link.changed', { index: 9, name: 'veth1a2b', kind: 'veth', up: false, lowerUp: false, operState: 'down', peerIndex: 2, peerNetnsId: 0, peerNetns: netns, changes: [{ field: 'peerNetnsId', to: 0 }] })
  const attachment = (ms: number) =>
    at(ms, 'cni', 'cni.attachment.added', { containerId: sandbox, ifName: 'eth0', networkName: 'net', file: 'f', ips: [], interfaces: [{ name: 'eth0', sandbox: `/var/run/netns/${netns}` }], sandbox: `/var/run/netns/${netns}` }, { k8s: { namespace: 'shop', pod: 'cart-1', podUid: POD, containerId: sandbox } })
  const pod = (ms: number, type = 'k8s.pod.updated') =>
    at(ms, 'kubernetes', type, { kind: 'Pod', namespace: 'shop', name: 'cart-1', uid: POD, resourceVersion: '5', labels: {}, ownerReferences: [], ownerChain: [] }, { k8s: { namespace: 'shop', pod: 'cart-1', podUid: POD } })

  it('a veth into a sandbox namespace, its CNI attachment and its pod make one incident', () => {
    const s = setup()
    const p0 = pod(T0 - 100, 'k8s.pod.added')
    const n = created(T0)
    const v = veth(T0 + 10)
    const a = attachment(T0 + 50)
    const p = pod(T0 + 300)
    // A pod event opens nothing (pods change all the time): the one before the sandbox is not linked.
    s.run(p0)
    expect(s.stats()).toMatchObject({ tracked: 0 })
    s.run(n, v)
    expect(s.emitted()).toEqual([])
    s.run(a)
    s.run(p, pod(T0 + 400))
    const [incident, update, ...rest] = s.emitted()
    expect(rest).toEqual([])
    expect(d(incident)).toMatchObject({ chain: 'veth-sandbox', added: [n.id, v.id, a.id], summary: `veth veth1a2b → netns ${netns} → sandbox ffffffffffff → pod shop/cart-1` })
    expect(d(update)).toMatchObject({ incident: incident?.id, added: [p.id], complete: true })
    expect(update?.entity).toEqual({ kind: 'Pod', name: 'cart-1', namespace: 'shop', uid: POD })
  })

  it('a namespace and a veth dumped at start (snapshot) open nothing', () => {
    const s = setup()
    s.run(created(T0, true), attachment(T0 + 1))
    expect(s.stats()).toMatchObject({ tracked: 1 })
    expect(s.emitted()).toEqual([])
  })
})

describe('correlate: in a chain', () => {
  it('counts what it adds as emitted under its own name: received + emitted = delivered + dropped', () => {
    const p = correlateProcessor({ name: 'corr' })
    const chain = new ProcessorChain([p])
    chain.run([kernelOom(T0), k8sOom(T0 + 1)], T0)
    const st = chain.statistics()
    expect(st.sources.corr).toEqual({ received: 0, emitted: 1, delivered: 1, dropped: {} })
    expect(st.sources.ebpf).toEqual({ received: 1, emitted: 0, delivered: 1, dropped: {} })
    expect(st).toMatchObject({ received: 2, emitted: 1, delivered: 3 })
    expect(st.processors.corr).toMatchObject({ type: 'correlate', counters: { incidents: 1, emitted: 1, tracked: 1 } })
  })

  it('takes a rule of your own: steps, keys and readiness', () => {
    const rule: ChainRule = {
      name: 'unit-exit',
      description: 'a unit failed → its main process exit',
      steps: [
        { name: 'failed', types: ['systemd.unit.failed'], keys: (e) => [correlationKey.unit(String(e.data.unit)), correlationKey.pid(Number(e.data.mainPid))] },
        { name: 'exit', types: ['kernel.process.exit'], opens: false, keys: (e) => [correlationKey.pid(Number(e.data.pid))] },
      ],
    }
    const s = setup({ chains: [rule] })
    s.run(at(T0, 'ebpf', 'kernel.process.exit', { pid: 7 }))
    expect(s.stats()).toMatchObject({ tracked: 0 })
    s.run(at(T0 + 1, 'systemd', 'systemd.unit.failed', { unit: 'a.service', mainPid: 7 }), at(T0 + 2, 'ebpf', 'kernel.process.exit', { pid: 7 }))
    expect(s.emitted().map((e) => d(e).chain)).toEqual(['unit-exit'])
    expect(() => correlateProcessor({ chains: ['nope'] })).toThrow(/unknown chain "nope" \(built-in: oom-kill, veth-sandbox, systemd-exit\)/)
    expect(() => correlateProcessor({ chains: [rule, rule] })).toThrow(/given twice/)
  })

  it('config problems name their path', () => {
    expect(processorProblems([{ type: 'correlate', chains: ['oom-kill', 'nope', 'oom-kill'] }], ['stdout'])).toEqual([
      'processors[0].chains[1]: expected a chain (oom-kill, veth-sandbox, systemd-exit), got "nope"',
      'processors[0].chains[2]: "oom-kill" is listed twice',
    ])
  })
})
