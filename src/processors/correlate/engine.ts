import type { TapioEvent } from '../../events/event.js'
import { nextEventId } from '../../events/id.js'
import type { Entity, K8sContext, Severity } from '../../events/schema.js'
import { nsFromMillis } from '../../events/time.js'
import { CORRELATION_EVENT_TYPES, type CorrelationData, type CorrelationMember } from '../../events/vocabulary/correlation.js'

/**
 * One step of a chain: which events fill it and by which keys they link to the other steps.
 * Keys are plain strings built with {@link correlationKey} (`container:<id>`, `pod:<uid>/<name>`,
 * `pid:<n>` ...): two events of one chain are linked when they share a key. A member adds all its
 * keys to its chain instance, so a chain can hop from key to key (kernel OOM by container id,
 * restart by pod uid and container name, both carried by the Kubernetes OOMKilled event).
 */
export interface ChainStep {
  /** The step's name in the incident (`members[].step`), unique in its chain. */
  readonly name: string
  /** Event types this step takes (an index: other types never reach `keys`). */
  readonly types: readonly string[]
  /** The event's join keys, or undefined/empty when this event is not a member (a predicate too). */
  keys(e: TapioEvent): readonly string[] | undefined
  /**
   * Whether an event of this step may start a chain instance (default true). Set false for a
   * frequent event that only matters after another step (every pod update, every process exit):
   * it joins an open instance or is ignored, and costs no memory.
   */
  readonly opens?: boolean
}

/** A chain: steps in causal order. Members may arrive in any order (collectors race). */
export interface ChainRule {
  /** `data.chain` of its incidents, and its name under `chains:` in the config. */
  readonly name: string
  /** One line for docs and the config schema. */
  readonly description: string
  readonly steps: readonly ChainStep[]
  /** When an instance becomes an incident, given the steps it has (default: two members or more). */
  ready?(steps: ReadonlySet<string>): boolean
  /** `data.summary`, from the members so far in step order (default: the step names). */
  summary?(members: readonly ChainMemberEvent[]): string
  /** Severity of its incidents (default: the highest of the members'). */
  severity?(members: readonly ChainMemberEvent[]): Severity
}

/** A member as a rule's `summary` sees it. */
export interface ChainMemberEvent {
  readonly step: string
  readonly event: TapioEvent
}

/** Key builders: one spelling per kind, so rules written apart still meet. */
export const correlationKey = {
  /** A container id, bare or `runtime://id` (the prefix is removed). */
  container: (id: string): string => `container:${bareId(id)}`,
  /** One container of a pod, by pod uid and container name (stable across restarts). */
  podContainer: (podUid: string, container: string): string => `pod:${podUid}/${container}`,
  pod: (podUid: string): string => `pod:${podUid}`,
  pid: (pid: number): string => `pid:${pid}`,
  /** A network namespace by its name under the netns dir (a path's last segment). */
  netns: (nameOrPath: string): string => `netns:${nameOrPath.slice(nameOrPath.lastIndexOf('/') + 1)}`,
  unit: (unit: string): string => `unit:${unit}`,
} as const

function bareId(id: string): string {
  const i = id.indexOf('://')
  return i < 0 ? id : id.slice(i + 3)
}

export interface CorrelationOptions {
  readonly rules: readonly ChainRule[]
  /** Members of one instance lie within this much of each other (event time); an instance nothing joined for this long (processing time) is forgotten. */
  readonly windowMs: number
  /** Keys tracked at most, over all open instances; past it the least recently active instance is evicted. */
  readonly maxKeys: number
  /** `source` of the emitted events (the processor's name). */
  readonly source: string
}

export interface CorrelationCounters {
  /** Open chain instances now, and the keys they hold (gauges). */
  readonly tracked: number
  readonly keys: number
  /** Events that joined or opened an instance. */
  readonly members: number
  /** Instances forgotten after their window, and evicted by the key bound. */
  readonly expired: number
  readonly evicted: number
  /** Instances joined into one by an event that linked them. */
  readonly merged: number
  /** tapio.correlation.incident and .updated events emitted; emitted = incidents + updates. */
  readonly incidents: number
  readonly updates: number
  readonly emitted: number
}

interface Member {
  readonly step: number
  readonly event: TapioEvent
  readonly ms: number
}

interface Instance {
  readonly rule: number
  /** By step index. */
  readonly members: (Member | undefined)[]
  count: number
  readonly keys: Set<string>
  minMs: number
  maxMs: number
  /** Processing time (ctx.now) of its last change: expiry. */
  touched: number
  /** Id of its incident event, once emitted. */
  incident?: string
}

const SEVERITY_RANK: Readonly<Record<Severity, number>> = { debug: 0, info: 1, warning: 2, error: 3, critical: 4 }

/** Epoch milliseconds of an event's nanosecond timestamp (no BigInt: this runs per member). */
function eventMs(e: TapioEvent): number {
  const t = e.timestamp
  return t.length > 6 ? Number(t.slice(0, -6)) : 0
}

/**
 * The correlation state: open chain instances indexed by key. Synchronous; time comes from the
 * caller (`now`, the processor stage's clock read per batch) and from the events' timestamps, so
 * it runs the same on a ManualClock as on the wall clock and needs no timer.
 *
 * Bounded: an instance is forgotten `windowMs` after its last change (checked as batches arrive),
 * and the keys of all open instances are at most `maxKeys` (the least recently active instance
 * goes first). Both are counted.
 */
export class CorrelationEngine {
  private readonly rules: readonly ChainRule[]
  private readonly windowMs: number
  private readonly maxKeys: number
  private readonly source: string
  /** Event type -> [rule index, step index] pairs. */
  private readonly byType = new Map<string, [number, number][]>()
  /** `<rule>|<key>` -> open instances holding that key. */
  private readonly index = new Map<string, Instance[]>()
  /** Open instances, least recently changed first (re-inserted on change). */
  private readonly open = new Set<Instance>()
  private keyCount = 0
  private counts = { members: 0, expired: 0, evicted: 0, merged: 0, incidents: 0, updates: 0 }

  constructor(o: CorrelationOptions) {
    if (!(o.windowMs > 0)) throw new RangeError(`correlate: windowMs must be > 0, got ${o.windowMs}`)
    if (!Number.isInteger(o.maxKeys) || o.maxKeys < 1) throw new RangeError(`correlate: maxKeys must be an integer >= 1, got ${o.maxKeys}`)
    this.rules = o.rules
    this.windowMs = o.windowMs
    this.maxKeys = o.maxKeys
    this.source = o.source
    const names = new Set<string>()
    o.rules.forEach((r, ri) => {
      if (names.has(r.name)) throw new RangeError(`correlate: chain ${JSON.stringify(r.name)} is given twice`)
      names.add(r.name)
      const steps = new Set<string>()
      r.steps.forEach((s, si) => {
        if (steps.has(s.name)) throw new RangeError(`correlate: chain ${JSON.stringify(r.name)} has step ${JSON.stringify(s.name)} twice`)
        steps.add(s.name)
        for (const t of s.types) {
          let list = this.byType.get(t)
          if (!list) this.byType.set(t, (list = []))
          list.push([ri, si])
        }
      })
    })
  }

  /** Whether any chain takes this event type (the fast path skips everything else). */
  takes(type: string): boolean {
    return this.byType.has(type)
  }

  /** Forget instances nothing joined for a window. */
  expire(now: number): void {
    for (const inst of this.open) {
      if (now - inst.touched <= this.windowMs) break
      this.forget(inst)
      this.counts.expired++
    }
  }

  /** Offer one event; returns the correlation events it causes (usually none). */
  observe(e: TapioEvent, now: number): TapioEvent[] | undefined {
    const pairs = this.byType.get(e.type)
    if (pairs === undefined) return undefined
    let out: TapioEvent[] | undefined
    let ms: number | undefined
    for (const [ri, si] of pairs) {
      const rule = this.rules[ri] as ChainRule
      const step = rule.steps[si] as ChainStep
      const keys = step.keys(e)
      if (keys === undefined || keys.length === 0) continue
      ms ??= eventMs(e)
      const emitted = this.join(ri, si, keys, e, ms, now)
      if (emitted) (out ??= []).push(emitted)
    }
    return out
  }

  statistics(): CorrelationCounters {
    const c = this.counts
    return { tracked: this.open.size, keys: this.keyCount, ...c, emitted: c.incidents + c.updates }
  }

  private join(ri: number, si: number, keys: readonly string[], e: TapioEvent, ms: number, now: number): TapioEvent | undefined {
    const rule = this.rules[ri] as ChainRule
    const candidates: Instance[] = []
    for (const k of keys) {
      for (const inst of this.index.get(`${ri}|${k}`) ?? []) {
        if (candidates.includes(inst) || inst.members[si] !== undefined) continue
        if (ms < inst.minMs - this.windowMs || ms > inst.maxMs + this.windowMs) continue
        if (inst.members.some((m) => m?.event.id === e.id)) continue
        candidates.push(inst)
      }
    }
    let target: Instance
    const added: Member[] = []
    if (candidates.length === 0) {
      if ((rule.steps[si] as ChainStep).opens === false) return undefined
      target = { rule: ri, members: new Array(rule.steps.length).fill(undefined), count: 0, keys: new Set(), minMs: ms, maxMs: ms, touched: now }
      this.open.add(target)
    } else {
      target = pickTarget(candidates)
      // The event links instances that each hold a part of one chain (a restart seen before the
      // OOMKilled that names both its container id and its pod): one instance, one incident.
      for (const other of candidates) {
        if (other === target || other.incident !== undefined || !disjoint(target, other)) continue
        for (const m of other.members) if (m) added.push(m)
        this.forget(other)
        for (const m of other.members) if (m) this.place(target, m)
        for (const k of other.keys) this.addKey(target, k)
        this.counts.merged++
      }
    }
    const member: Member = { step: si, event: e, ms }
    this.place(target, member)
    added.push(member)
    this.counts.members++
    for (const k of keys) this.addKey(target, k)
    target.touched = now
    this.open.delete(target)
    this.open.add(target)
    this.bound(target)
    if (target.incident !== undefined) {
      this.counts.updates++
      return this.report(CORRELATION_EVENT_TYPES.updated, target, added, now)
    }
    const present = new Set<string>()
    target.members.forEach((m, i) => {
      if (m) present.add((rule.steps[i] as ChainStep).name)
    })
    if (!(rule.ready ? rule.ready(present) : target.count >= 2)) return undefined
    this.counts.incidents++
    return this.report(CORRELATION_EVENT_TYPES.incident, target, target.members.filter((m): m is Member => m !== undefined), now)
  }

  private place(inst: Instance, m: Member): void {
    inst.members[m.step] = m
    inst.count++
    if (m.ms < inst.minMs) inst.minMs = m.ms
    if (m.ms > inst.maxMs) inst.maxMs = m.ms
  }

  private addKey(inst: Instance, k: string): void {
    if (inst.keys.has(k)) return
    inst.keys.add(k)
    const ik = `${inst.rule}|${k}`
    const list = this.index.get(ik)
    if (list) list.push(inst)
    else this.index.set(ik, [inst])
    this.keyCount++
  }

  private forget(inst: Instance): void {
    this.open.delete(inst)
    for (const k of inst.keys) {
      const ik = `${inst.rule}|${k}`
      const list = this.index.get(ik)
      if (!list) continue
      const i = list.indexOf(inst)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.index.delete(ik)
    }
    this.keyCount -= inst.keys.size
  }

  /** Evict the least recently active instances (never `keep`) until the keys fit. */
  private bound(keep: Instance): void {
    for (const inst of this.open) {
      if (this.keyCount <= this.maxKeys) return
      if (inst === keep) continue
      this.forget(inst)
      this.counts.evicted++
    }
  }

  private report(type: string, inst: Instance, added: readonly Member[], now: number): TapioEvent {
    const rule = this.rules[inst.rule] as ChainRule
    const members = inst.members.filter((m): m is Member => m !== undefined)
    const views: ChainMemberEvent[] = members.map((m) => ({ step: (rule.steps[m.step] as ChainStep).name, event: m.event }))
    const id = nextEventId()
    inst.incident ??= id
    let first = members[0] as Member
    let last = first
    for (const m of members) {
      if (m.ms < first.ms) first = m
      if (m.ms > last.ms) last = m
    }
    const data: CorrelationData = {
      chain: rule.name,
      incident: inst.incident,
      summary: rule.summary ? rule.summary(views) : views.map((v) => v.step).join(' → '),
      members: views.map((v): CorrelationMember => ({ step: v.step, id: v.event.id, type: v.event.type, source: v.event.source, timestamp: v.event.timestamp, severity: v.event.severity })),
      added: added.map((m) => m.event.id),
      steps: rule.steps.map((s) => s.name),
      complete: inst.count === rule.steps.length,
      keys: [...inst.keys].sort(),
      firstTimestamp: first.event.timestamp,
      lastTimestamp: last.event.timestamp,
    }
    const k8s = mergeK8s(members)
    const entity = podEntity(k8s) ?? members.find((m) => m.event.entity)?.event.entity
    return {
      id,
      timestamp: nsFromMillis(now),
      type,
      source: this.source,
      severity: rule.severity ? rule.severity(views) : highest(members),
      ...(entity ? { entity } : {}),
      data,
      ...(k8s ? { k8s } : {}),
    }
  }
}

/** The instance that already reported, else the fullest, else the most recently active. */
function pickTarget(candidates: readonly Instance[]): Instance {
  let best = candidates[0] as Instance
  for (const c of candidates) if (better(c, best)) best = c
  return best
}

function better(a: Instance, b: Instance): boolean {
  const ra = a.incident !== undefined
  const rb = b.incident !== undefined
  if (ra !== rb) return ra
  if (a.count !== b.count) return a.count > b.count
  return a.touched > b.touched
}

function disjoint(a: Instance, b: Instance): boolean {
  return a.members.every((m, i) => m === undefined || b.members[i] === undefined)
}

function highest(members: readonly Member[]): Severity {
  let s: Severity = 'debug'
  for (const m of members) if (SEVERITY_RANK[m.event.severity] > SEVERITY_RANK[s]) s = m.event.severity
  return s
}

/** The members' pod context, each field from the first member (in step order) that has it. */
function mergeK8s(members: readonly Member[]): K8sContext | undefined {
  const out: Record<string, unknown> = {}
  for (const m of members) {
    const k = m.event.k8s
    if (!k) continue
    for (const [f, v] of Object.entries(k)) if (v !== undefined && out[f] === undefined) out[f] = v
  }
  return Object.keys(out).length > 0 ? (out as K8sContext) : undefined
}

function podEntity(k8s: K8sContext | undefined): Entity | undefined {
  if (!k8s?.pod) return undefined
  return { kind: 'Pod', name: k8s.pod, ...(k8s.namespace ? { namespace: k8s.namespace } : {}), ...(k8s.podUid ? { uid: k8s.podUid } : {}) }
}
