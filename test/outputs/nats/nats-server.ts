import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../../support/wait.js'

/** A free TCP port on loopback (bound then released; nats-server takes it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

const live = new Set<NatsServer>()

/** Every task of `pid` in state T (stopped) or t (traced), from /proc/<pid>/task/<tid>/stat. */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      return state === 'T' || state === 't'
    })
  } catch {
    return false
  }
}

export interface NatsServerOptions {
  readonly name?: string
  readonly port?: number
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly number[] }
  /** Require this user and password from clients. */
  readonly auth?: { readonly user: string; readonly pass: string }
  /** TLS on the client port; `verify` requires a client certificate signed by `ca`. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string; readonly verify?: boolean }
  /** More configuration lines (nkey users, operator mode...). */
  readonly extra?: readonly string[]
}

/** A real `nats-server -js` on 127.0.0.1 with its own store directory. */
export class NatsServer {
  readonly dir: string
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  log = ''

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly cluster: NatsServerOptions['cluster'],
    private readonly auth?: NatsServerOptions['auth'],
    private readonly tls?: NatsServerOptions['tls'],
    private readonly extra: readonly string[] = [],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `nats-${name}-`))
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const s = new NatsServer(opts.name ?? 'n1', opts.port ?? (await freePort()), opts.cluster, opts.auth, opts.tls, opts.extra)
    live.add(s)
    await s.run()
    return s
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined
  }

  /** Start (again, with the same port and store) and wait until it accepts clients. */
  async run(): Promise<void> {
    if (this.child) return
    const conf = join(this.dir, 'server.conf')
    const lines = [
      `server_name: ${this.name}`,
      `listen: 127.0.0.1:${this.port}`,
      `jetstream { store_dir: "${join(this.dir, 'js')}" }`,
    ]
    if (this.auth) lines.push(`authorization { user: ${JSON.stringify(this.auth.user)}, password: ${JSON.stringify(this.auth.pass)} }`)
    if (this.tls) {
      const t = this.tls
      lines.push(
        `tls { cert_file: ${JSON.stringify(t.cert)}, key_file: ${JSON.stringify(t.key)}${t.ca ? `, ca_file: ${JSON.stringify(t.ca)}` : ''}${t.verify ? ', verify: true' : ''}, timeout: 5 }`,
      )
    }
    lines.push(...this.extra)
    if (this.cluster) {
      lines.push(
        `cluster { name: ${this.cluster.name}, listen: 127.0.0.1:${this.cluster.port}, routes: [${this.cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`,
      )
    }
    writeFileSync(conf, `${lines.join('\n')}\n`)
    this.log = ''
    const child = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()))
    let gone = false
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        gone = true
        resolve()
      }),
    )
    child.once('error', (e) => (this.log += `spawn error: ${e.message}\n`))
    await waitFor(() => /Server is ready/.test(this.log) || gone, `nats-server ${this.name} to be ready`, 30_000)
    if (gone) {
      this.child = undefined
      throw new Error(`nats-server ${this.name} exited during start:\n${this.log}`)
    }
  }

  /** SIGSTOP: a server that hangs (connections stay open, nothing is answered). */
  /**
   * SIGSTOP, then wait until every thread of the server is stopped: kill(2) returns before a Go
   * thread running on the other core has taken the stop, and under load it kept acknowledging
   * for a while.
   */
  async pause(): Promise<void> {
    const pid = this.child?.pid
    if (pid === undefined) return
    this.child?.kill('SIGSTOP')
    await waitFor(() => allThreadsStopped(pid), 'nats-server stopped (SIGSTOP taken by every thread)')
  }

  resume(): void {
    this.child?.kill('SIGCONT')
  }

  /** SIGKILL: the crash case (no goodbye to clients or routes). */
  async kill(): Promise<void> {
    const c = this.child
    if (!c) return
    this.child = undefined
    c.kill('SIGKILL')
    await this.exited
  }

  /** Stop and remove the store. */
  async destroy(): Promise<void> {
    await this.kill()
    live.delete(this)
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Three JetStream servers routed to each other on loopback. */
export class NatsCluster {
  private constructor(readonly servers: readonly NatsServer[]) {}

  static async start(size = 3): Promise<NatsCluster> {
    const ports = await Promise.all(Array.from({ length: size }, () => freePort()))
    const routes = await Promise.all(Array.from({ length: size }, () => freePort()))
    const name = `tapio-${process.pid}`
    const servers = await Promise.all(
      ports.map((port, i) => NatsServer.start({ name: `n${i + 1}`, port, cluster: { name, port: routes[i] as number, routes: routes.filter((_, j) => j !== i) } })),
    )
    return new NatsCluster(servers)
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url)
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.destroy()))
  }
}

/** Kill and remove every server this process started (afterAll safety net). */
export async function destroyAllNatsServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.destroy()))
}
