import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * A Kubernetes API server stand-in for tests: node:http on 127.0.0.1 speaking the real
 * list/watch protocol (resourceVersion, limit/continue, `watch=true` with chunked JSON lines,
 * BOOKMARK, ERROR with a 410 Status after compaction, timeoutSeconds), with an API to change
 * objects and to inject the faults real API servers and networks produce.
 *
 * Also: `coordination.k8s.io/v1` Leases (get, create, update by name) with the API server's
 * optimistic concurrency (an update carrying a stale `metadata.resourceVersion` gets 409
 * Conflict), and lists at an exact past resourceVersion (`resourceVersionMatch=Exact`, 410 once
 * compacted), which a new leader uses to resume where the previous one stopped.
 */

interface ResourceDef {
  readonly group: string // '' for core
  readonly version: string
  readonly kind: string
  readonly namespaced: boolean
}

const RESOURCES: Readonly<Record<string, ResourceDef>> = {
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true },
  services: { group: '', version: 'v1', kind: 'Service', namespaced: true },
  events: { group: '', version: 'v1', kind: 'Event', namespaced: true },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', namespaced: true },
  deployments: { group: 'apps', version: 'v1', kind: 'Deployment', namespaced: true },
  replicasets: { group: 'apps', version: 'v1', kind: 'ReplicaSet', namespaced: true },
  daemonsets: { group: 'apps', version: 'v1', kind: 'DaemonSet', namespaced: true },
  statefulsets: { group: 'apps', version: 'v1', kind: 'StatefulSet', namespaced: true },
  jobs: { group: 'batch', version: 'v1', kind: 'Job', namespaced: true },
}

export type JsonObject = { [k: string]: unknown }
type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED'

export type FaultKind =
  /** HTTP 410 Gone with a Status body. */
  | 'http410'
  /** HTTP 500 with a Status body. */
  | 'http500'
  /** 200, then an ERROR watch event carrying Status 410 Expired, then the stream ends. */
  | 'error410'
  /** 200, then the stream ends at once. */
  | 'close'
  /** 200 and headers, then silence (the connection stays open). */
  | 'stall'
  /** The request is accepted and never answered. */
  | 'stallHeaders'

export interface Fault {
  readonly kind: FaultKind
  /** Which requests: watches, lists or both (default watch). */
  readonly verb?: 'watch' | 'list' | 'any'
  /** Only this resource (default any). */
  readonly resource?: string
  /** How many matching requests it hits (default 1; Infinity until cleared). */
  times?: number
}

export interface RequestRecord {
  readonly at: number
  readonly path: string
  readonly resource: string
  readonly namespace?: string
  readonly watch: boolean
  readonly query: Readonly<Record<string, string>>
  /** HTTP method (GET for lists and watches; leases also POST and PUT). */
  readonly method?: string
  /** What the server did: ok, or the fault kind. */
  readonly outcome: 'ok' | FaultKind | 'bad-request' | 'not-found' | 'conflict' | 'exists'
}

interface HistoryEntry {
  readonly rv: number
  readonly resource: string
  readonly type: WatchType
  readonly object: JsonObject
}

interface Watcher {
  readonly resource: string
  readonly namespace?: string
  readonly match: (o: JsonObject) => boolean
  readonly bookmarks: boolean
  readonly res: http.ServerResponse
  readonly timer?: NodeJS.Timeout
}

/** How watch streams are written; used to exercise slow and fragmented streams. */
export interface StreamShape {
  /** Split every line into pieces of this many bytes (0: whole lines). */
  readonly splitBytes: number
  /** Delay between pieces. */
  readonly delayMs: number
}

function meta(o: JsonObject): JsonObject {
  const m = o.metadata
  if (typeof m === 'object' && m !== null) return m as JsonObject
  const fresh: JsonObject = {}
  o.metadata = fresh
  return fresh
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function keyOf(o: JsonObject): string {
  const m = meta(o)
  return `${str(m.namespace) ?? ''}/${str(m.name) ?? str(m.uid) ?? randomUUID()}`
}

type Requirement = (o: JsonObject) => boolean

function parseLabelSelector(sel: string): Requirement | string {
  const reqs: Requirement[] = []
  for (const raw of sel.split(',').map((s) => s.trim()).filter(Boolean)) {
    const labels = (o: JsonObject) => (meta(o).labels ?? {}) as Record<string, string>
    let m: RegExpMatchArray | null
    if ((m = raw.match(/^([\w./-]+)\s*!=\s*([\w.-]*)$/))) {
      const [, k, v] = m as [string, string, string]
      reqs.push((o) => labels(o)[k] !== v)
    } else if ((m = raw.match(/^([\w./-]+)\s*==?\s*([\w.-]*)$/))) {
      const [, k, v] = m as [string, string, string]
      reqs.push((o) => labels(o)[k] === v)
    } else if ((m = raw.match(/^!([\w./-]+)$/))) {
      const k = (m as [string, string])[1]
      reqs.push((o) => !(k in labels(o)))
    } else if ((m = raw.match(/^([\w./-]+)$/))) {
      const k = (m as [string, string])[1]
      reqs.push((o) => k in labels(o))
    } else return `unable to parse requirement: ${raw}`
  }
  return (o) => reqs.every((r) => r(o))
}

const FIELDS: Readonly<Record<string, (o: JsonObject) => string>> = {
  'metadata.name': (o) => str(meta(o).name) ?? '',
  'metadata.namespace': (o) => str(meta(o).namespace) ?? '',
  'spec.nodeName': (o) => str((o.spec as JsonObject | undefined)?.nodeName) ?? '',
  'status.phase': (o) => str((o.status as JsonObject | undefined)?.phase) ?? '',
}

function parseFieldSelector(sel: string): Requirement | string {
  const reqs: Requirement[] = []
  for (const raw of sel.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = raw.match(/^([\w.]+)\s*(!=|==|=)\s*(.*)$/)
    if (!m) return `invalid field selector: ${raw}`
    const [, field, op, value] = m as [string, string, string, string]
    const get = FIELDS[field]
    if (!get) return `field label not supported: ${field}`
    reqs.push(op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value)
  }
  return (o) => reqs.every((r) => r(o))
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = []
  private readonly server: http.Server
  private readonly sockets = new Set<Socket>()
  private readonly objects = new Map<string, Map<string, JsonObject>>()
  private readonly history: HistoryEntry[] = []
  private readonly watchers = new Set<Watcher>()
  private readonly continueTokens = new Map<string, { items: JsonObject[]; rv: number }>()
  private readonly stalled = new Set<http.ServerResponse>()
  private faults: Fault[] = []
  private rv = 1000
  /** Watches from a resourceVersion below this get 410 (the history before it is gone). */
  private compactedBelow = 0
  /** Every object at the last compaction: with the history after it, the state at any later version. */
  private compactedState = new Map<string, Map<string, JsonObject>>()
  private readonly leases = new Map<string, JsonObject>()
  /** Successful lease writes (create and update), in order. */
  readonly leaseWrites: { readonly at: number; readonly name: string; readonly holder: string | undefined }[] = []
  private shape: StreamShape = { splitBytes: 0, delayMs: 0 }
  private port = 0
  private listening = false
  private bookmarkTimer: NodeJS.Timeout | undefined

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res))
    this.server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    for (const r of Object.keys(RESOURCES)) this.objects.set(r, new Map())
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get resourceVersion(): string {
    return String(this.rv)
  }

  /** Open TCP connections from clients. */
  get connections(): number {
    return this.sockets.size
  }

  get openWatches(): number {
    return this.watchers.size + this.stalled.size
  }

  /** Open watch streams per resource (`{ pods: 3, services: 1 }`). */
  openWatchesByResource(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const w of this.watchers) out[w.resource] = (out[w.resource] ?? 0) + 1
    return out
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
    this.listening = true
  }

  /** The API server goes away: connections reset, new ones refused. */
  async down(): Promise<void> {
    if (!this.listening) return
    this.listening = false
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.dropConnections()
    await closed
  }

  /** Back on the same port, with its state. */
  async up(): Promise<void> {
    if (this.listening) return
    await this.start()
  }

  async stop(): Promise<void> {
    this.autoBookmark(0)
    await this.down()
  }

  private dropConnections(): void {
    for (const w of this.watchers) clearTimeout(w.timer)
    this.watchers.clear()
    this.stalled.clear()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  // ---- objects ---------------------------------------------------------------------------

  private store(resource: string): Map<string, JsonObject> {
    const s = this.objects.get(resource)
    if (!s) throw new Error(`fake apiserver: unknown resource ${resource}`)
    return s
  }

  private record(resource: string, type: WatchType, object: JsonObject): void {
    this.rv += 1
    const m = meta(object)
    m.resourceVersion = String(this.rv)
    const snapshot = structuredClone(object)
    this.history.push({ rv: this.rv, resource, type, object: snapshot })
    this.broadcast(resource, type, snapshot)
  }

  /** Create an object (a deep copy of `object`); uid, resourceVersion and creationTimestamp are assigned. */
  create(resource: string, object: JsonObject): JsonObject {
    const o = structuredClone(object)
    const m = meta(o)
    const def = RESOURCES[resource]
    if (!def) throw new Error(`fake apiserver: unknown resource ${resource}`)
    o.kind ??= def.kind
    o.apiVersion ??= def.group ? `${def.group}/${def.version}` : def.version
    m.uid = randomUUID()
    m.creationTimestamp ??= new Date().toISOString()
    if (def.namespaced) m.namespace ??= 'default'
    else delete m.namespace
    const key = keyOf(o)
    if (this.store(resource).has(key)) throw new Error(`fake apiserver: ${resource} ${key} exists`)
    this.store(resource).set(key, o)
    this.record(resource, 'ADDED', o)
    return structuredClone(o)
  }

  /** Change an object in place through `mutate`; a new resourceVersion is assigned. */
  update(resource: string, namespace: string | undefined, name: string, mutate: (o: JsonObject) => void): JsonObject {
    const key = `${namespace ?? ''}/${name}`
    const o = this.store(resource).get(key)
    if (!o) throw new Error(`fake apiserver: ${resource} ${key} not found`)
    mutate(o)
    this.record(resource, 'MODIFIED', o)
    return structuredClone(o)
  }

  delete(resource: string, namespace: string | undefined, name: string): void {
    const key = `${namespace ?? ''}/${name}`
    const o = this.store(resource).get(key)
    if (!o) throw new Error(`fake apiserver: ${resource} ${key} not found`)
    this.store(resource).delete(key)
    this.record(resource, 'DELETED', o)
  }

  get(resource: string, namespace: string | undefined, name: string): JsonObject | undefined {
    const o = this.store(resource).get(`${namespace ?? ''}/${name}`)
    return o && structuredClone(o)
  }

  /**
   * Store and announce an object exactly as given (no uid or namespace filled in), for objects
   * missing required fields. It gets a resourceVersion only when it has a metadata object.
   */
  createRaw(resource: string, object: JsonObject, type: WatchType = 'ADDED'): void {
    const o = structuredClone(object)
    this.rv += 1
    if (typeof o.metadata === 'object' && o.metadata !== null) (o.metadata as JsonObject).resourceVersion = String(this.rv)
    if (type !== 'DELETED') this.store(resource).set(`raw/${this.rv}`, o)
    this.history.push({ rv: this.rv, resource, type, object: o })
    this.broadcast(resource, type, o)
  }

  /** Forget the history up to now: watches from any older resourceVersion get 410 Expired. */
  compact(): void {
    this.compactedBelow = this.rv
    this.history.length = 0
    this.compactedState = new Map([...this.objects].map(([r, m]) => [r, new Map([...m].map(([k, o]) => [k, structuredClone(o)]))]))
  }

  /** Objects of `resource` as they were at resourceVersion `at` (at >= the last compaction). */
  private stateAt(resource: string, at: number): JsonObject[] {
    const state = new Map([...(this.compactedState.get(resource) ?? new Map<string, JsonObject>())])
    for (const h of this.history) {
      if (h.rv > at) break
      if (h.resource !== resource) continue
      const key = keyOf(structuredClone(h.object))
      if (h.type === 'DELETED') state.delete(key)
      else state.set(key, h.object)
    }
    return [...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => structuredClone(o))
  }

  // ---- leases ----------------------------------------------------------------------------

  /** The stored Lease, if any (a copy). */
  lease(namespace: string, name: string): JsonObject | undefined {
    const l = this.leases.get(`${namespace}/${name}`)
    return l && structuredClone(l)
  }

  private handleLease(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    namespace: string,
    name: string | undefined,
    log: (outcome: RequestRecord['outcome']) => void,
  ): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let body: JsonObject = {}
      if (chunks.length > 0) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonObject
        } catch {
          log('bad-request')
          return this.sendJson(res, 400, this.status(400, 'BadRequest', 'request body is not JSON'))
        }
      }
      const key = (n: string) => `${namespace}/${n}`
      const write = (code: number, lease: JsonObject) => {
        this.rv += 1
        const m = meta(lease)
        m.namespace = namespace
        m.resourceVersion = String(this.rv)
        lease.kind = 'Lease'
        lease.apiVersion = 'coordination.k8s.io/v1'
        this.leases.set(key(str(m.name) ?? ''), lease)
        const spec = (lease.spec ?? {}) as JsonObject
        this.leaseWrites.push({ at: Date.now(), name: str(m.name) ?? '', holder: str(spec.holderIdentity) })
        log('ok')
        this.sendJson(res, code, lease)
      }
      if (req.method === 'GET' && name !== undefined) {
        const l = this.leases.get(key(name))
        if (!l) {
          log('not-found')
          return this.sendJson(res, 404, this.status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`))
        }
        log('ok')
        return this.sendJson(res, 200, l)
      }
      if (req.method === 'POST' && name === undefined) {
        const n = str(meta(body).name)
        if (!n) {
          log('bad-request')
          return this.sendJson(res, 422, this.status(422, 'Invalid', 'metadata.name: Required value'))
        }
        if (this.leases.has(key(n))) {
          log('exists')
          return this.sendJson(res, 409, this.status(409, 'AlreadyExists', `leases.coordination.k8s.io "${n}" already exists`))
        }
        const m = meta(body)
        m.uid = randomUUID()
        m.creationTimestamp = new Date().toISOString()
        return write(201, body)
      }
      if (req.method === 'PUT' && name !== undefined) {
        const current = this.leases.get(key(name))
        if (!current) {
          log('not-found')
          return this.sendJson(res, 404, this.status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`))
        }
        const sent = str(meta(body).resourceVersion)
        if (sent !== undefined && sent !== str(meta(current).resourceVersion)) {
          log('conflict')
          return this.sendJson(
            res,
            409,
            this.status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`),
          )
        }
        const m = meta(body)
        m.uid = meta(current).uid
        m.creationTimestamp = meta(current).creationTimestamp
        m.name = name
        return write(200, body)
      }
      log('not-found')
      this.sendJson(res, 405, this.status(405, 'MethodNotAllowed', `${req.method ?? ''} not allowed here`))
    })
  }

  // ---- stream control --------------------------------------------------------------------

  /** Send a BOOKMARK at the current resourceVersion to every watch that allows them. */
  bookmark(): number {
    let n = 0
    for (const w of this.watchers) {
      if (!w.bookmarks) continue
      const def = RESOURCES[w.resource] as ResourceDef
      this.writeLine(w.res, {
        type: 'BOOKMARK',
        object: {
          kind: def.kind,
          apiVersion: def.group ? `${def.group}/${def.version}` : def.version,
          metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'false' } },
        },
      })
      n++
    }
    return n
  }

  /** Send bookmarks every `ms` (as a real API server does about once a minute); 0 stops them. */
  autoBookmark(ms: number): void {
    clearInterval(this.bookmarkTimer)
    this.bookmarkTimer = ms > 0 ? setInterval(() => this.bookmark(), ms) : undefined
  }

  /** Write a raw line (e.g. not JSON at all) to every open watch. */
  sendRawLine(line: string, resource?: string): void {
    for (const w of this.watchers) if (!resource || w.resource === resource) w.res.write(`${line}\n`)
  }

  /** End every open watch stream cleanly (as a server-side timeout does). */
  closeWatches(): void {
    for (const w of this.watchers) {
      clearTimeout(w.timer)
      w.res.end()
    }
    this.watchers.clear()
  }

  /** Send an ERROR 410 event on every open watch and end it (the server lost the watch's history). */
  expireWatches(): void {
    for (const w of this.watchers) {
      clearTimeout(w.timer)
      this.writeLine(w.res, { type: 'ERROR', object: this.status(410, 'Expired', 'too old resource version') })
      w.res.end()
    }
    this.watchers.clear()
  }

  setStreamShape(shape: StreamShape): void {
    this.shape = shape
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault, times: fault.times ?? 1 })
  }

  clearFaults(): void {
    this.faults = []
  }

  watchRequests(resource?: string): RequestRecord[] {
    return this.requests.filter((r) => r.watch && (!resource || r.resource === resource))
  }

  listRequests(resource?: string): RequestRecord[] {
    return this.requests.filter((r) => !r.watch && (!resource || r.resource === resource))
  }

  // ---- HTTP ------------------------------------------------------------------------------

  private status(code: number, reason: string, message: string): JsonObject {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
  }

  private takeFault(resource: string, watch: boolean): Fault | undefined {
    const i = this.faults.findIndex(
      (f) =>
        (!f.resource || f.resource === resource) &&
        ((f.verb ?? 'watch') === 'any' || (f.verb ?? 'watch') === (watch ? 'watch' : 'list')),
    )
    if (i < 0) return undefined
    const f = this.faults[i] as Fault
    f.times = (f.times ?? 1) - 1
    if (f.times <= 0) this.faults.splice(i, 1)
    return f
  }

  private parsePath(pathname: string): { resource: string; namespace?: string; name?: string } | undefined {
    const m = pathname.match(/^\/(?:api\/v1|apis\/([\w.-]+)\/(v\w+))\/(.*)$/)
    if (!m) return undefined
    const group = m[1] ?? ''
    const segs = (m[3] ?? '').split('/').filter(Boolean).map(decodeURIComponent)
    let resource: string | undefined
    let namespace: string | undefined
    let name: string | undefined
    if (segs.length === 1 || segs.length === 2) {
      resource = segs[0]
      name = segs[1]
    } else if ((segs.length === 3 || segs.length === 4) && segs[0] === 'namespaces') {
      namespace = segs[1]
      resource = segs[2]
      name = segs[3]
    }
    const def = resource ? RESOURCES[resource] : undefined
    if (!resource || !def || def.group !== group) return undefined
    if (namespace !== undefined && !def.namespaced) return undefined
    return { resource, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x')
    const query = Object.fromEntries(url.searchParams)
    const watch = query.watch === 'true' || query.watch === '1'
    const lease = url.pathname.match(/^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/)
    const target = lease ? undefined : this.parsePath(url.pathname)
    const log = (outcome: RequestRecord['outcome']) =>
      this.requests.push({
        at: Date.now(),
        path: url.pathname,
        resource: lease ? 'leases' : (target?.resource ?? ''),
        ...(lease?.[1] !== undefined ? { namespace: decodeURIComponent(lease[1]) } : {}),
        ...(target?.namespace !== undefined ? { namespace: target.namespace } : {}),
        watch,
        query,
        method: req.method ?? 'GET',
        outcome,
      })
    if (lease) {
      const ns = decodeURIComponent(lease[1] as string)
      return this.handleLease(req, res, ns, lease[2] !== undefined ? decodeURIComponent(lease[2]) : undefined, log)
    }
    if (req.method !== 'GET' || !target) {
      log('not-found')
      return this.sendJson(res, 404, this.status(404, 'NotFound', `the server could not find ${url.pathname}`))
    }
    const labels = parseLabelSelector(query.labelSelector ?? '')
    const fields = parseFieldSelector(query.fieldSelector ?? '')
    if (typeof labels === 'string' || typeof fields === 'string') {
      log('bad-request')
      return this.sendJson(res, 400, this.status(400, 'BadRequest', typeof labels === 'string' ? labels : (fields as string)))
    }
    const inNs = (o: JsonObject) => target.namespace === undefined || str(meta(o).namespace) === target.namespace
    const match = (o: JsonObject) => inNs(o) && labels(o) && fields(o)

    if (target.name !== undefined) {
      // GET of one object by name.
      const o = this.store(target.resource).get(`${target.namespace ?? ''}/${target.name}`)
      log(o ? 'ok' : 'not-found')
      if (!o) return this.sendJson(res, 404, this.status(404, 'NotFound', `${target.resource} "${target.name}" not found`))
      return this.sendJson(res, 200, o)
    }
    const fault = this.takeFault(target.resource, watch)
    log(fault?.kind ?? 'ok')
    switch (fault?.kind) {
      case 'http410':
        return this.sendJson(res, 410, this.status(410, 'Expired', 'too old resource version'))
      case 'http500':
        return this.sendJson(res, 500, this.status(500, 'InternalError', 'etcdserver: request timed out'))
      case 'stallHeaders':
        // Hold the request; it ends when the client gives up or the server stops.
        return
      case 'stall':
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.flushHeaders()
        this.stalled.add(res)
        res.on('close', () => this.stalled.delete(res))
        return
      case 'close':
        res.writeHead(200, { 'Content-Type': 'application/json' })
        return void res.end()
      case 'error410':
        res.writeHead(200, { 'Content-Type': 'application/json' })
        this.writeLine(res, { type: 'ERROR', object: this.status(410, 'Expired', 'too old resource version') })
        return void res.end()
      default:
        break
    }
    if (watch) this.startWatch(target.resource, target.namespace, query, match, res)
    else this.sendList(target.resource, query, match, res)
  }

  private sendJson(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
    res.end(text)
  }

  private sendList(resource: string, query: Record<string, string>, match: Requirement, res: http.ServerResponse): void {
    const def = RESOURCES[resource] as ResourceDef
    let items: JsonObject[]
    let rv: number
    if (query.continue) {
      const snap = this.continueTokens.get(query.continue)
      if (!snap) return this.sendJson(res, 410, this.status(410, 'Expired', 'the provided continue parameter is too old'))
      this.continueTokens.delete(query.continue)
      items = snap.items
      rv = snap.rv
    } else if (query.resourceVersion && query.resourceVersionMatch === 'Exact') {
      const at = Number(query.resourceVersion)
      if (!(at >= this.compactedBelow) || at > this.rv) {
        return this.sendJson(res, 410, this.status(410, 'Expired', `too old resource version: ${query.resourceVersion} (${this.compactedBelow})`))
      }
      items = this.stateAt(resource, at).filter(match)
      rv = at
    } else {
      items = [...this.store(resource).entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, o]) => structuredClone(o))
        .filter(match)
      rv = this.rv
    }
    const limit = Number(query.limit ?? 0)
    let cont: string | undefined
    if (limit > 0 && items.length > limit) {
      cont = randomUUID()
      this.continueTokens.set(cont, { items: items.slice(limit), rv })
      items = items.slice(0, limit)
    }
    const body = {
      kind: `${def.kind}List`,
      apiVersion: def.group ? `${def.group}/${def.version}` : def.version,
      metadata: { resourceVersion: String(rv), ...(cont ? { continue: cont } : {}) },
      // Real list items carry no kind/apiVersion.
      items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    }
    this.sendJson(res, 200, body)
  }

  private startWatch(
    resource: string,
    namespace: string | undefined,
    query: Record<string, string>,
    match: Requirement,
    res: http.ServerResponse,
  ): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' })
    res.flushHeaders()
    const from = Number(query.resourceVersion ?? '0')
    if (query.resourceVersion && from < this.compactedBelow) {
      this.writeLine(res, {
        type: 'ERROR',
        object: this.status(410, 'Expired', `too old resource version: ${from} (${this.compactedBelow})`),
      })
      return void res.end()
    }
    for (const h of this.history) {
      if (h.rv > from && h.resource === resource && match(h.object)) this.writeLine(res, { type: h.type, object: h.object })
    }
    const seconds = Number(query.timeoutSeconds ?? 0)
    const watcher: Watcher = {
      resource,
      ...(namespace !== undefined ? { namespace } : {}),
      match,
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
      ...(seconds > 0
        ? {
            timer: setTimeout(() => {
              this.watchers.delete(watcher)
              res.end()
            }, seconds * 1000),
          }
        : {}),
    }
    this.watchers.add(watcher)
    res.on('close', () => {
      clearTimeout(watcher.timer)
      this.watchers.delete(watcher)
    })
  }

  private broadcast(resource: string, type: WatchType, object: JsonObject): void {
    for (const w of this.watchers) {
      if (w.resource === resource && w.match(object)) this.writeLine(w.res, { type, object })
    }
  }

  private writeLine(res: http.ServerResponse, event: unknown): void {
    const line = `${JSON.stringify(event)}\n`
    const { splitBytes, delayMs } = this.shape
    if (splitBytes <= 0 && delayMs <= 0) {
      res.write(line)
      return
    }
    // Fragmented, slow delivery: pieces queued per response so lines never interleave.
    let slow = slowQueues.get(res)
    if (!slow) {
      const created: SlowQueue = { pieces: [], timer: undefined }
      res.once('close', () => clearTimeout(created.timer))
      slowQueues.set(res, created)
      slow = created
    }
    const step = splitBytes > 0 ? splitBytes : line.length
    for (let i = 0; i < line.length; i += step) slow.pieces.push(line.slice(i, i + step))
    if (slow.timer === undefined) this.pump(res, slow, delayMs)
  }

  private pump(res: http.ServerResponse, slow: SlowQueue, delayMs: number): void {
    if (slow.pieces.length === 0 || res.destroyed || res.writableEnded) {
      slow.pieces.length = 0
      slow.timer = undefined
      return
    }
    slow.timer = setTimeout(() => {
      const next = slow.pieces.shift()
      if (next !== undefined && !res.destroyed && !res.writableEnded) res.write(next)
      this.pump(res, slow, delayMs)
    }, delayMs)
  }
}

interface SlowQueue {
  readonly pieces: string[]
  timer: NodeJS.Timeout | undefined
}
const slowQueues = new WeakMap<http.ServerResponse, SlowQueue>()

/** A kubeconfig (YAML) pointing at `server`, with two contexts: `fake` (current) and `other`. */
export function kubeconfigYaml(server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fake',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    '- name: nowhere',
    '  cluster:',
    '    server: http://127.0.0.1:9',
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: tester',
    '  user:',
    '    token: fake-token',
    'contexts:',
    '- name: fake',
    '  context: {cluster: fake, user: tester}',
    '- name: other',
    '  context: {cluster: nowhere, user: tester}',
    'current-context: other',
    '',
  ].join('\n')
}
