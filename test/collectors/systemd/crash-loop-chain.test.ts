/**
 * The systemd chain with real parts: a crash-looping unit under a real systemd --user (see
 * user-manager.ts), the eBPF collector in the running kernel and the systemd collector in one
 * CollectorManager, and the correlate processor on the merged stream. Each failed run must give
 * one incident naming its `systemd.unit.failed` and the `kernel.process.exit` of its main process.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { detectEbpf, EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { DEFAULT_SYSTEMD_EXCLUDE, SystemdCollector } from '../../../src/collectors/systemd/index.js'
import { type CorrelationData, CollectorManager, correlateProcessor, ProcessorChain, type TapioEvent } from '../../../src/index.js'
import { type UserManager, startUserManager, waitFor } from './user-manager.js'

const UNIT = 'crashloop.service'
/** StartLimitBurst: the manager runs the unit this many times, then refuses the next start. */
const RUNS = 3

let um: UserManager | undefined
let mgr: CollectorManager | undefined
let counterDir: string | undefined
let consuming: Promise<void> | undefined
const out: TapioEvent[] = []

beforeAll(async () => {
  const d = await detectEbpf()
  expect(d, d.reason).toMatchObject({ supported: true })
  counterDir = await mkdtemp(join(tmpdir(), 'tapio-crashloop-'))
  um = await startUserManager()
  mgr = new CollectorManager()
  // Exits only: the chain's kernel side (and fewer records on a shared machine).
  mgr.addCollector('ebpf', new EbpfCollector({ programs: { exec: false, exit: true, tcp: false, oom: false } }))
  mgr.addCollector('systemd', new SystemdCollector({ address: um.busAddress, exclude: [...DEFAULT_SYSTEMD_EXCLUDE] }))
  await mgr.start()
  const chain = new ProcessorChain([correlateProcessor({ chains: ['systemd-exit'], windowMs: 30_000 })])
  const batches = mgr.batches()
  consuming = (async () => {
    for await (const r of chain.apply(batches)) out.push(...r.events)
  })()
  // The eBPF side delivers before the unit starts (each probe's systemctl exits: a record).
  await waitFor('the eBPF collector to deliver', async () => {
    await um?.systemctl(['is-system-running'])
    return out.some((e) => e.source === 'ebpf') || undefined
  })
}, 120_000)

afterAll(async () => {
  try {
    if (um) await um.systemctl(['stop', UNIT, 'killed.service'])
  } finally {
    try {
      await mgr?.stop()
      await consuming
    } finally {
      await um?.stop()
      if (counterDir) await rm(counterDir, { recursive: true, force: true })
    }
  }
}, 120_000)

const dataOf = (e: TapioEvent) => e.data as Record<string, unknown>

it('a crash-looping unit gives one incident per failed run, with the exit of its main process', async () => {
  if (!um || !counterDir) throw new Error('setup failed')
  // Each run exits with its own status (11, 12, 13), so an incident cannot borrow another run's exit.
  const script = `n=$(cat ${counterDir}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counterDir}/n; sleep 0.2; exit $((10+n))`
  const r = await um.systemdRun([
    `--unit=${UNIT}`,
    '-p', 'Restart=always',
    '-p', 'RestartSec=150ms',
    '-p', `StartLimitBurst=${RUNS}`,
    '-p', 'StartLimitIntervalSec=120',
    '/bin/sh', '-c', script,
  ])
  expect(r.code, r.stderr).toBe(0)

  const failedOf = () => out.filter((e) => e.type === 'systemd.unit.failed' && dataOf(e).unit === UNIT)
  // RUNS failed runs, then the failure of the start the limit refused.
  await waitFor(`${RUNS + 1} failures of ${UNIT}`, () => failedOf().length >= RUNS + 1 || undefined, 60_000)
  const show = await um.show(UNIT, ['ActiveState', 'NRestarts', 'ExecMainPID'])
  expect(show).toMatchObject({ ActiveState: 'failed', NRestarts: String(RUNS) })

  const runs = failedOf().slice(0, RUNS)
  const pids = runs.map((e) => dataOf(e).mainPid as number)
  expect(new Set(pids).size).toBe(RUNS)
  expect(pids.at(-1)).toBe(Number(show.ExecMainPID))
  expect(runs.map((e) => dataOf(e).exitStatus)).toEqual([11, 12, 13])

  const exitOf = (pid: number) => out.find((e) => e.type === 'kernel.process.exit' && dataOf(e).pid === pid)
  await waitFor('the kernel exits of the main processes', () => pids.every((p) => exitOf(p)) || undefined, 30_000)
  // An incident goes out right after the event that completes it: with every member through the
  // stage, the incidents are all there.
  const incidents = out.filter((e) => e.type === 'tapio.correlation.incident' && (e.data as CorrelationData).chain === 'systemd-exit')
  expect(incidents).toHaveLength(RUNS)
  const byId = new Map(out.map((e) => [e.id, e]))
  runs.forEach((failed, i) => {
    const pid = pids[i] as number
    const exit = exitOf(pid) as TapioEvent
    const incident = incidents.find((x) => (x.data as CorrelationData).members.some((m) => m.id === failed.id))
    expect(incident, `incident for run ${i + 1} (pid ${pid})`).toBeDefined()
    const d = incident?.data as CorrelationData
    expect(d.members.map((m) => [m.step, m.id])).toEqual([
      ['systemd.unit.failed', failed.id],
      ['kernel.process.exit', exit.id],
    ])
    expect(d.keys).toEqual([`pid:${pid}/exited:${11 + i}`])
    // The members are the events in the stream: the kernel's record of the same pid and status.
    expect(dataOf(byId.get(exit.id) as TapioEvent)).toMatchObject({ pid, exitCode: 11 + i, signal: 0 })
    expect(d.summary).toBe(`${UNIT} failed (exit-code): main process ${pid} (sh) exited with status ${11 + i}`)
  })
  // The refused start names the last run's process again and links nothing.
  expect(dataOf(failedOf()[RUNS] as TapioEvent)).toMatchObject({ oldActiveState: 'inactive', mainPid: pids.at(-1) })
  expect(out.filter((e) => e.type === 'tapio.correlation.updated')).toEqual([])
}, 120_000)

it('links a main process killed by a signal by that signal', async () => {
  if (!um) throw new Error('setup failed')
  const unit = 'killed.service'
  const r = await um.systemdRun([`--unit=${unit}`, '/bin/sleep', '600'])
  expect(r.code, r.stderr).toBe(0)
  const started = await waitFor(`${unit} to start`, () => out.find((e) => e.type === 'systemd.unit.started' && dataOf(e).unit === unit), 30_000)
  process.kill(dataOf(started).mainPid as number, 'SIGKILL')
  const failed = await waitFor(`${unit} to fail`, () => out.find((e) => e.type === 'systemd.unit.failed' && dataOf(e).unit === unit), 30_000)
  const pid = dataOf(failed).mainPid as number
  expect(dataOf(failed)).toMatchObject({ result: 'signal', exitCode: 'killed', exitStatus: 9 })
  const exit = await waitFor(`the kernel exit of ${pid}`, () => out.find((e) => e.type === 'kernel.process.exit' && dataOf(e).pid === pid), 30_000)
  expect(dataOf(exit)).toMatchObject({ signal: 9, exitCode: 0, coreDumped: false })
  const incident = out.find((e) => e.type === 'tapio.correlation.incident' && (e.data as CorrelationData).members.some((m) => m.id === failed.id))
  expect((incident?.data as CorrelationData | undefined)?.members.map((m) => m.id)).toEqual([failed.id, exit.id])
  expect((incident?.data as CorrelationData).keys).toEqual([`pid:${pid}/killed:9`])
}, 60_000)
