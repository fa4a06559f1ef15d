import * as Result from 'effect/Result'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { exitKey, exitOutcome, failureOutcome } from '../../src/processors/correlate/systemd-exit.js'
import {
  type CorrelationData,
  correlateProcessor,
  makeEvent,
  nsFromMillis,
  ProcessorChain,
  type TapioEvent,
  validateEvent,
} from '../../src/index.js'

/** The systemd chain on a driven clock: event times and the stage's `now` are both ours. */

const T0 = 1_700_000_000_000

function failed(ms: number, pid: number, status: number, extra: Record<string, unknown> = {}): TapioEvent {
  return makeEvent(
    'systemd',
    'systemd.unit.failed',
    {
      unit: 'loop.service',
      unitType: 'service',
      activeState: 'failed',
      subState: 'failed',
      oldActiveState: 'active',
      oldSubState: 'running',
      result: 'exit-code',
      mainPid: pid,
      exitCode: 'exited',
      exitStatus: status,
      mainExitedAt: nsFromMillis(ms - 2),
      ...extra,
    } as never,
    { timestamp: nsFromMillis(ms), severity: 'error', entity: { kind: 'systemd.unit', name: 'loop.service' } },
  )
}

function exit(ms: number, pid: number, exitCode: number, signal = 0, coreDumped = false): TapioEvent {
  return makeEvent(
    'ebpf',
    'kernel.process.exit',
    { pid, tid: pid, uid: 0, comm: 'sh', cgroupId: '9', ppid: 1, exitCode, signal, coreDumped, durationNs: 1_000_000 } as never,
    { timestamp: nsFromMillis(ms), severity: signal ? 'warning' : 'info' },
  )
}

function setup(windowMs = 10_000) {
  const clock = new ManualClock(T0)
  const p = correlateProcessor({ chains: ['systemd-exit'], windowMs })
  const chain = new ProcessorChain([p])
  const out: TapioEvent[] = []
  const run = (...events: TapioEvent[]) => {
    const r = chain.run(events, clock.now())
    out.push(...r.events)
    return r.events
  }
  const incidents = () => out.filter((e) => e.type === 'tapio.correlation.incident')
  const stats = () => p.statistics?.() ?? {}
  return { clock, chain, run, out, incidents, stats }
}

const d = (e: TapioEvent | undefined) => e?.data as CorrelationData
const memberIds = (e: TapioEvent | undefined) => d(e).members.map((m) => [m.step, m.id])

describe('correlate: systemd unit failed → its main process exit', () => {
  it('links the failure and the exit of its main process, whichever arrives first', () => {
    for (const order of ['exit first', 'failure first'] as const) {
      const s = setup()
      const x = exit(T0, 4242, 3)
      const f = failed(T0 + 3, 4242, 3)
      const batches = order === 'exit first' ? [[x], [f]] : [[f], [x]]
      expect(s.run(...(batches[0] as TapioEvent[]))).toHaveLength(1)
      s.clock.advance(50)
      const second = s.run(...(batches[1] as TapioEvent[]))
      expect(second.map((e) => e.type)).toEqual([(batches[1] as TapioEvent[])[0]?.type, 'tapio.correlation.incident'])
      const incident = second[1]
      expect(incident).toMatchObject({ source: 'correlate', severity: 'error', entity: { kind: 'systemd.unit', name: 'loop.service' } })
      expect(d(incident)).toMatchObject({
        chain: 'systemd-exit',
        steps: ['systemd.unit.failed', 'kernel.process.exit'],
        complete: true,
        keys: ['pid:4242/exited:3'],
        summary: 'loop.service failed (exit-code): main process 4242 (sh) exited with status 3',
      })
      expect(memberIds(incident)).toEqual([
        ['systemd.unit.failed', f.id],
        ['kernel.process.exit', x.id],
      ])
      const v = validateEvent(incident as TapioEvent)
      expect(Result.isSuccess(v) ? 'valid' : String(v.failure)).toBe('valid')
    }
  })

  it('does not link an exit of the same pid that ended otherwise, nor one outside the window', () => {
    const s = setup(1_000)
    s.run(exit(T0, 4242, 1))
    s.run(failed(T0 + 5, 4242, 3))
    s.run(exit(T0 + 10, 4243, 7))
    s.run(failed(T0 + 5_000, 4243, 7))
    expect(s.incidents()).toEqual([])
  })

  it('opens nothing for a clean exit: only an exit that could be a failure is kept', () => {
    const s = setup()
    s.run(exit(T0, 100, 0), exit(T0, 101, 0), exit(T0, 102, 0))
    expect(s.stats()).toMatchObject({ tracked: 0, members: 0 })
    s.run(exit(T0, 103, 2))
    expect(s.stats()).toMatchObject({ tracked: 1, members: 1 })
  })

  it('matches signal deaths by signal and core dump', () => {
    const s = setup()
    const killed = failed(T0 + 1, 500, 9, { exitCode: 'killed', result: 'signal' })
    const dumped = failed(T0 + 1, 501, 11, { exitCode: 'dumped', result: 'core-dump' })
    const notDumped = failed(T0 + 1, 502, 11, { exitCode: 'dumped', result: 'core-dump' })
    const k = exit(T0, 500, 0, 9)
    const c = exit(T0, 501, 0, 11, true)
    s.run(k, c, exit(T0, 502, 0, 11, false))
    s.run(killed, dumped, notDumped)
    expect(s.incidents().map(memberIds)).toEqual([
      [['systemd.unit.failed', killed.id], ['kernel.process.exit', k.id]],
      [['systemd.unit.failed', dumped.id], ['kernel.process.exit', c.id]],
    ])
    expect(d(s.incidents()[0]).summary).toBe('loop.service failed (signal): main process 500 (sh) was killed by signal 9')
    expect(d(s.incidents()[1]).summary).toBe('loop.service failed (core-dump): main process 501 (sh) dumped core on signal 11')
  })

  it('gives a crash loop one incident per failed run, not one for the start the start limit refused', () => {
    const s = setup()
    const runs = [
      { pid: 7001, status: 11 },
      { pid: 7002, status: 12 },
      { pid: 7003, status: 13 },
    ]
    const pairs: [TapioEvent, TapioEvent][] = []
    let t = T0
    runs.forEach(({ pid, status }, i) => {
      const x = exit(t, pid, status)
      const f = failed(t + 2, pid, status, { restartCount: i })
      pairs.push([f, x])
      // Collectors race: alternate which side reaches the stage first.
      if (i % 2 === 0) s.run(x, f)
      else s.run(f, x)
      t += 400
      s.clock.advance(400)
    })
    // StartLimitBurst reached: the unit goes inactive -> failed with the last run's ExecMain* values.
    const refused = failed(t, 7003, 13, { oldActiveState: 'inactive', oldSubState: 'dead', restartCount: 3 })
    s.run(refused)
    expect(s.incidents().map(memberIds)).toEqual(
      pairs.map(([f, x]) => [
        ['systemd.unit.failed', f.id],
        ['kernel.process.exit', x.id],
      ]),
    )
    expect(s.out.filter((e) => e.type === 'tapio.correlation.updated')).toEqual([])
  })

  it('also holds when the refused start is seen before the last exit arrives', () => {
    const s = setup()
    const f = failed(T0 + 2, 7003, 13)
    const refused = failed(T0 + 400, 7003, 13, { oldActiveState: 'inactive', oldSubState: 'dead' })
    const x = exit(T0, 7003, 13)
    s.run(f)
    s.clock.advance(400)
    s.run(refused)
    s.clock.advance(400)
    s.run(x)
    expect(s.incidents().map(memberIds)).toEqual([
      [
        ['systemd.unit.failed', f.id],
        ['kernel.process.exit', x.id],
      ],
    ])
  })
})

describe('systemd chain keys', () => {
  it('spells the outcome the same from systemd and from the kernel', () => {
    expect(failureOutcome({ mainPid: 9, exitCode: 'exited', exitStatus: 3 })).toEqual({ pid: 9, outcome: 'exited:3' })
    expect(exitOutcome({ pid: 9, exitCode: 3, signal: 0, coreDumped: false })).toEqual({ pid: 9, outcome: 'exited:3' })
    expect(failureOutcome({ mainPid: 9, exitCode: 'dumped', exitStatus: 6 })).toEqual({ pid: 9, outcome: 'dumped:6' })
    expect(exitOutcome({ pid: 9, exitCode: 0, signal: 6, coreDumped: true })).toEqual({ pid: 9, outcome: 'dumped:6' })
    expect(exitKey(9, 'killed:15')).toBe('pid:9/killed:15')
  })

  it('takes no failure that names no main process or no exit', () => {
    expect(failureOutcome({ exitCode: 'exited', exitStatus: 3 })).toBeUndefined()
    expect(failureOutcome({ mainPid: 0, exitCode: 'exited', exitStatus: 3 })).toBeUndefined()
    expect(failureOutcome({ mainPid: 9, exitStatus: 3 })).toBeUndefined()
    expect(failureOutcome({ mainPid: 9, exitCode: 'trapped', exitStatus: 5 })).toBeUndefined()
    expect(failureOutcome({ mainPid: 9, exitCode: 'exited', exitStatus: 3, oldActiveState: 'inactive' })).toBeUndefined()
    expect(exitOutcome({ pid: 9, exitCode: 3 })).toBeUndefined()
  })
})
