import type { SourceStatistics } from '../../../src/core/statistics.js'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Collector } from '../../../src/core/collector.js'
import type { EbpfTotals } from '../../../src/collectors/ebpf/index.js'
import type { EventInput } from '../../../src/events/event.js'

/** Consumes a started collector's events in the background, like the supervisor would. */
export class Sink {
  readonly events: EventInput[] = []
  readonly done: Promise<void>
  batches = 0

  constructor(collector: Collector) {
    this.done = (async () => {
      for await (const item of collector.events()) {
        this.batches++
        if (Array.isArray(item)) for (const e of item as EventInput[]) this.events.push(e)
        else this.events.push(item as EventInput)
      }
    })()
  }

  find(pred: (e: EventInput) => boolean): EventInput | undefined {
    return this.events.find(pred)
  }
}

/** Polls until `cond` returns a value, or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, cond: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = cond()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export function data(e: EventInput): Record<string, unknown> {
  return (e.data ?? {}) as Record<string, unknown>
}

/** A copy of /bin/sh under a unique name (its comm), in a fresh temp dir. */
export function uniqueShell(): { path: string; name: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tapio-ebpf-'))
  const name = `tpx${randomBytes(4).toString('hex')}`
  const path = join(dir, name)
  copyFileSync('/bin/sh', path)
  execFileSync('chmod', ['755', path])
  return { path, name, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Runs a command to completion; resolves with its pid and exit code. */
export function run(cmd: string, args: readonly string[]): Promise<{ pid: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' })
    child.on('error', reject)
    child.on('exit', (code) => resolve({ pid: child.pid ?? -1, code }))
  })
}

/** Compiles bench/ebpf/loadgen.c (the known-count load generator) if needed; returns its path. */
export function buildLoadgen(): string {
  const root = join(import.meta.dirname, '..', '..', '..')
  execFileSync('bash', [join(root, 'bench', 'ebpf', 'build.sh'), 'loadgen'], { stdio: 'inherit' })
  return join(root, 'bench', 'ebpf', 'out', 'loadgen')
}

/** A started load generator waiting for `go()`; `done` resolves when it has made all its calls. */
export interface Loadgen {
  readonly pid: number
  go(): void
  readonly done: Promise<void>
  kill(): void
}

export async function startLoadgen(path: string, count: number): Promise<Loadgen> {
  const child = spawn(path, [String(count)], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  let resolveDone: () => void = () => {}
  let rejectDone: (e: Error) => void = () => {}
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve
    rejectDone = reject
  })
  const pid = await new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const first = out.split('\n')[0]
      if (out.includes('\n') && first) resolve(Number(first))
      if (out.includes('done ')) resolveDone()
    })
  })
  child.on('exit', (code) => {
    if (code !== 0) rejectDone(new Error(`loadgen exited with ${code}`))
    else resolveDone()
  })
  return {
    pid,
    go: () => child.stdin.end('go\n'),
    done,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL')
    },
  }
}

/** Compiles test/collectors/ebpf/<name>.ts (and what it imports) to plain JS for a child process. */
export function compileChild(name: string): string {
  const root = join(import.meta.dirname, '..', '..', '..')
  // One directory per child: test files compile in parallel.
  const outDir = join(root, 'test-artifacts', 'ebpf-children', name)
  execFileSync(
    join(root, 'node_modules', '.bin', 'tsc'),
    [
      '--ignoreConfig', '--outDir', outDir, '--rootDir', root, '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node',
      join(root, 'test', 'collectors', 'ebpf', `${name}.ts`),
    ],
    { stdio: 'inherit' },
  )
  return join(outDir, 'test', 'collectors', 'ebpf', `${name}.js`)
}

/** statistics() with the exact totals typed (they are always present). */
export function stats(c: {
  statistics(): SourceStatistics
  totals(): EbpfTotals
}): Readonly<Record<string, number>> & EbpfTotals & { queued: number } {
  const s = c.statistics()
  return { ...s.counters, queued: s.gauges?.queuedInCollector ?? 0, ...c.totals() }
}
