import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateEvent } from '../../../src/events/event.js'
import { stampEvent } from '../../../src/events/event.js'
import { detectEbpf, EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { Result } from 'effect'
import { data, run, Sink, stats, uniqueShell, waitFor } from './helpers.js'

describe('ebpf collector: process exec and exit', () => {
  const collector = new EbpfCollector({ programs: { tcp: false, oom: false } })
  let sink: Sink
  const shell = uniqueShell()

  beforeAll(async () => {
    const d = await detectEbpf()
    expect(d, d.reason).toMatchObject({ supported: true })
    await collector.start(AbortSignal.timeout(30_000))
    sink = new Sink(collector)
  })

  afterAll(async () => {
    await collector.stop()
    shell.cleanup()
  })

  it('reports the exec and the exit (code 3) of a uniquely named program', async () => {
    const { pid, code } = await run(shell.path, ['-c', 'exit 3'])
    expect(code).toBe(3)
    const exec = await waitFor('exec event', () =>
      sink.find((e) => e.type === 'kernel.process.exec' && data(e).pid === pid),
    )
    expect(data(exec)).toMatchObject({ pid, comm: shell.name, filename: shell.path, ppid: process.pid })
    expect(typeof data(exec).cgroupId).toBe('string')
    const exit = await waitFor('exit event', () =>
      sink.find((e) => e.type === 'kernel.process.exit' && data(e).pid === pid),
    )
    expect(data(exit)).toMatchObject({ pid, comm: shell.name, exitCode: 3, signal: 0, ppid: process.pid })
    expect(data(exit).durationNs).toBeGreaterThan(0)
    // Kernel boot-time stamps become epoch time: within a minute of now.
    const ts = BigInt(exec.timestamp ?? '0')
    const now = BigInt(Date.now()) * 1_000_000n
    expect(ts > now - 60_000_000_000n && ts <= now + 1_000_000_000n).toBe(true)
    // The events pass the registered data schemas.
    for (const e of [exec, exit]) {
      const v = validateEvent(stampEvent({ ...e }, 'ebpf'))
      expect(Result.isSuccess(v), Result.isFailure(v) ? v.failure.message : '').toBe(true)
    }
  })

  it('reports a signal death as a warning with the signal number', async () => {
    const { pid } = await run(shell.path, ['-c', 'kill -9 $$'])
    const exit = await waitFor('exit event', () =>
      sink.find((e) => e.type === 'kernel.process.exit' && data(e).pid === pid),
    )
    expect(data(exit)).toMatchObject({ signal: 9, exitCode: 0 })
    expect(exit.severity).toBe('warning')
  })

  it('is healthy and its counters add up', async () => {
    const h = collector.health()
    expect(h.status).toBe('ok')
    expect(h.details?.attached).toEqual(['exec', 'exit', 'cgroup'])
    const s = stats(collector)
    expect(s.generated).toBeGreaterThan(0)
    expect(s.generated).toBe(s.delivered + s.droppedKernel + s.droppedUser + s.pending)
  })
})
