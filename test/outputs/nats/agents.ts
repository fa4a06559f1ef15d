import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentProcess, CLI, metric, ROOT } from '../../agent/support.js'
import { waitFor } from '../../support/wait.js'

export { AgentProcess, CLI, metric, ROOT }

/** Real `tapio-agent` processes and `tapio-agent consume` readers, all killed by `stopAll()`. */
export class Processes {
  readonly dir = mkdtempSync(join(tmpdir(), 'tapio-nats-e2e-'))
  private readonly procs: AgentProcess[] = []

  agent(node: string, servers: readonly string[], collectors: string, natsExtra = '', top = ''): AgentProcess {
    const path = join(this.dir, `${node}-${this.procs.length}.yaml`)
    writeFileSync(
      path,
      `node: ${node}
collectors:
${collectors}
outputs:
  nats: { servers: [${servers.map((s) => JSON.stringify(s)).join(', ')}], ackTimeoutMs: 1000, retry: { initialMs: 50, maxMs: 500 }${natsExtra} }
http: { port: 0 }
${top}`,
    )
    return this.spawn(['--config', path])
  }

  consumer(servers: readonly string[], durable: string, filter?: string): AgentProcess {
    // A short ack wait: what a stopped reader had been sent but never saw comes back quickly.
    return this.spawn(['consume', '--durable', durable, '--servers', servers.join(','), '--ack-wait-ms', '3000', ...(filter ? ['--filter', filter] : [])])
  }

  private spawn(args: string[]): AgentProcess {
    const p = new AgentProcess(args)
    this.procs.push(p)
    return p
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.procs.splice(0).map((p) => p.stop()))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export async function metrics(agent: AgentProcess): Promise<string> {
  return (await fetch(`${await agent.url()}/metrics`)).text()
}

export interface NatsStatus {
  ready: boolean
  lastError: string | null
  written: number
  details: { connection: { phase: string; link: string | null; stream: string | null; publish: string | null }; connected: boolean; server: string | null; pendingEvents: number; ackedEvents: number; failedEvents: { total: number }; reconnects: number; retriedEvents: number; connectAttempts: number }
}

export async function natsStatus(agent: AgentProcess): Promise<NatsStatus> {
  const s = (await (await fetch(`${await agent.url()}/api/status`)).json()) as { outputs: { nats: NatsStatus } }
  return s.outputs.nats
}

/** Poll an async condition (each poll awaited) until it holds. */
export async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  let ok = false
  let busy = false
  await waitFor(
    () => {
      if (!busy) {
        busy = true
        cond().then(
          (v) => {
            ok = v
            busy = false
          },
          () => {
            busy = false
          },
        )
      }
      return ok
    },
    what,
    timeoutMs,
    50,
  )
}

/** Event ids printed by `tapio-agent consume` processes, with how often each was seen. */
export function idCounts(readers: readonly AgentProcess[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const r of readers) for (const e of r.events()) counts.set(e.id, (counts.get(e.id) ?? 0) + 1)
  return counts
}
