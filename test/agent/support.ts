import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../support/wait.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = 'dist/src/agent/cli.js'

/** A real `tapio-agent` process; killed in `stop()` if it is still running. */
export class AgentProcess {
  readonly child: ChildProcessWithoutNullStreams
  stdout = ''
  stderr = ''
  exitCode: number | null | undefined
  readonly exited: Promise<number | null>

  /**
   * `prefix`: a command that execs the agent (e.g. `prlimit --nofile=200`); `nodeArgs` go to node
   * itself, before the CLI (e.g. `--expose-gc`).
   */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, prefix: readonly string[] = [], nodeArgs: readonly string[] = []) {
    const [cmd, ...rest] = [...prefix, process.execPath, ...nodeArgs, CLI, ...args] as [string, ...string[]]
    this.child = spawn(cmd, rest, { cwd: ROOT, env: { ...process.env, ...env } })
    this.child.stdout.on('data', (d: Buffer) => (this.stdout += d.toString()))
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        this.exitCode = code
        resolve(code)
      }),
    )
  }

  logs(): { msg: string; level: string; [k: string]: unknown }[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; level: string })
  }

  events(): { source: string; type: string; data: Record<string, unknown>; id: string }[] {
    return this.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { source: string; type: string; data: Record<string, unknown>; id: string })
  }

  async url(): Promise<string> {
    await waitFor(() => /http: listening on (\S+)/.test(this.stderr) || this.exitCode !== undefined, 'the agent to listen')
    const m = /http: listening on (http:\/\/[^"\s]+)/.exec(this.stderr)
    if (!m) throw new Error(`agent did not start: ${this.stderr}`)
    return m[1] as string
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  async stop(): Promise<void> {
    if (this.exitCode === undefined) {
      this.child.kill('SIGKILL')
      await this.exited
    }
  }
}

/** Prometheus text -> value of one sample (labels matched exactly, order-insensitive). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_]+)(\{([^}]*)\})?\s+(\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries(
      (m[3] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split('=')
          return [k, (v ?? '').replace(/^"|"$/g, '')]
        }),
    )
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) return Number(m[4])
  }
  return undefined
}
