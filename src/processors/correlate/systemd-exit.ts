import type { TapioEvent } from '../../events/event.js'
import type { ProcessExitData } from '../../events/vocabulary/kernel.js'
import type { SystemdUnitData } from '../../events/vocabulary/systemd.js'
import { type ChainMemberEvent, type ChainRule, correlationKey } from './engine.js'

/**
 * How a main process ended, in one spelling for both sides: `exited:<status>`, `killed:<signal>`
 * or `dumped:<signal>`. systemd's ExecMainCode/ExecMainStatus and the kernel's wait status are two
 * readings of the same waitid() result, so a failure and the exit it reports agree on it exactly.
 */
type Outcome = `${'exited' | 'killed' | 'dumped'}:${number}`

const SYSTEMD_OUTCOMES = new Set(['exited', 'killed', 'dumped'])

/** The join key: the pid and how it ended, so an exit of the same pid that ended otherwise does not link. */
export function exitKey(pid: number, outcome: Outcome): string {
  return `${correlationKey.pid(pid)}/${outcome}`
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0

/** The failure's main process and outcome, or undefined when it names none it could be linked by. */
export function failureOutcome(d: Partial<SystemdUnitData>): { pid: number; outcome: Outcome } | undefined {
  if (!isCount(d.mainPid) || d.mainPid === 0 || !isCount(d.exitStatus)) return undefined
  if (typeof d.exitCode !== 'string' || !SYSTEMD_OUTCOMES.has(d.exitCode)) return undefined
  // From inactive straight to failed no process ran: the start was refused (start-limit-hit) and
  // the ExecMain* values still describe the run before, whose own failure already names its exit.
  if (d.oldActiveState === 'inactive') return undefined
  return { pid: d.mainPid, outcome: `${d.exitCode as 'exited' | 'killed' | 'dumped'}:${d.exitStatus}` }
}

/** The exit's pid and outcome from the eBPF collector's wait status fields. */
export function exitOutcome(d: Partial<ProcessExitData>): { pid: number; outcome: Outcome } | undefined {
  if (!isCount(d.pid) || d.pid === 0 || !isCount(d.exitCode) || !isCount(d.signal)) return undefined
  if (d.signal === 0) return { pid: d.pid, outcome: `exited:${d.exitCode}` }
  return { pid: d.pid, outcome: `${d.coreDumped === true ? 'dumped' : 'killed'}:${d.signal}` }
}

const STEP_FAILED = 'systemd.unit.failed'
const STEP_EXIT = 'kernel.process.exit'

function describe(outcome: string): string {
  const [how, n] = outcome.split(':')
  if (how === 'exited') return `exited with status ${n}`
  return `${how === 'dumped' ? 'dumped core on' : 'was killed by'} signal ${n}`
}

/**
 * systemd unit failed (the systemd collector names the main process: `mainPid`, `exitCode`,
 * `exitStatus`) → the kernel's record of that process's exit (eBPF `kernel.process.exit`, same pid,
 * same status or signal). Either may arrive first.
 *
 * Every process on a node exits, so only exits that could be a failure open an instance: those
 * with a non-zero status or a signal. A unit that fails although its main process exited 0
 * (Type=notify that never sent READY=1) is therefore not linked.
 */
export const systemdExitChain: ChainRule = {
  name: 'systemd-exit',
  description: "systemd unit failed → its main process's exit (same pid and status)",
  steps: [
    {
      name: STEP_FAILED,
      types: ['systemd.unit.failed'],
      keys: (e) => {
        const f = failureOutcome(e.data as Partial<SystemdUnitData>)
        return f ? [exitKey(f.pid, f.outcome)] : undefined
      },
    },
    {
      name: STEP_EXIT,
      types: ['kernel.process.exit'],
      keys: (e) => {
        const x = exitOutcome(e.data as Partial<ProcessExitData>)
        return x && x.outcome !== 'exited:0' ? [exitKey(x.pid, x.outcome)] : undefined
      },
    },
  ],
  summary: (members) => {
    const failed = find(members, STEP_FAILED)
    const exit = find(members, STEP_EXIT)
    const f = failed?.data as Partial<SystemdUnitData> | undefined
    const x = exit ? exitOutcome(exit.data as Partial<ProcessExitData>) : undefined
    const who = f?.unit ?? 'a unit'
    const comm = (exit?.data as Partial<ProcessExitData> | undefined)?.comm
    const proc = `main process ${x?.pid ?? f?.mainPid ?? '?'}${comm ? ` (${comm})` : ''}`
    const how = x ? describe(x.outcome) : f?.exitCode ? describe(`${f.exitCode}:${f.exitStatus}`) : 'ended'
    return `${who} failed${f?.result ? ` (${f.result})` : ''}: ${proc} ${how}`
  },
}

function find(members: readonly ChainMemberEvent[], step: string): TapioEvent | undefined {
  return members.find((m) => m.step === step)?.event
}
