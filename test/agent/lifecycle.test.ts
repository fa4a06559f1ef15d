import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger, formatLogLine } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { waitFor } from '../support/wait.js'

const kinds = builtinKinds()
const agents: Agent[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})

interface Line {
  level: string
  msg: string
  event?: string
  collector?: string
  [k: string]: unknown
}

interface StreamEvent {
  type: string
  source: string
  severity: string
  entity?: { kind: string; name: string }
  data: Record<string, unknown>
}

function startAgent(yaml: string, level: 'debug' | 'info' = 'info'): { agent: Agent; lines: Line[]; events: StreamEvent[] } {
  const lines: Line[] = []
  const events: StreamEvent[] = []
  const logger = createLogger(level, (l) => lines.push(JSON.parse(l) as Line))
  const sink = new Writable({
    write: (chunk: Buffer, _e, cb) => {
      for (const l of chunk.toString().split('\n')) if (l) events.push(JSON.parse(l) as StreamEvent)
      cb()
    },
  })
  const agent = new Agent(loadConfigText(yaml, 'lifecycle-test', validators(kinds)), { kinds: kindMap(kinds), logger, stdout: sink })
  agents.push(agent)
  return { agent, lines, events }
}

const lifecycle = (lines: Line[], collector: string) => lines.filter((l) => l.collector === collector && l.event?.startsWith('collector.'))

describe('lifecycle logs', () => {
  it('logs each failure with its error, each restart with delay and n of max, each recovery, and the give-up reason', async () => {
    const { agent, lines } = startAgent(`http: { enabled: false }
collectors:
  flaky: { kind: synthetic, rate: 0, batchSize: 10, failAfter: 20, policy: { maxRestarts: 2, withinMs: 60000, backoff: { initialMs: 20, factor: 2, jitter: 0 } } }
`)
    await agent.start()
    await waitFor(() => lines.some((l) => l.event === 'collector.gave_up'), 'the give-up line')
    const seen = lifecycle(lines, 'flaky').map((l) => [l.event, l.level])
    expect(seen).toEqual([
      ['collector.failed', 'warn'],
      ['collector.restart_scheduled', 'info'],
      ['collector.recovered', 'info'],
      ['collector.failed', 'warn'],
      ['collector.restart_scheduled', 'info'],
      ['collector.recovered', 'info'],
      ['collector.failed', 'warn'],
      ['collector.gave_up', 'error'],
    ])
    const failed = lines.find((l) => l.event === 'collector.failed') as Line
    expect(failed.error).toBe('event source failed: synthetic: injected failure after 20 events')
    expect(failed.msg).toBe('flaky: failed: event source failed: synthetic: injected failure after 20 events')
    const restarts = lines.filter((l) => l.event === 'collector.restart_scheduled')
    expect(restarts.map((l) => [l.delayMs, l.attempt, l.maxRestarts, l.withinMs])).toEqual([
      [20, 1, 2, 60000],
      [40, 2, 2, 60000],
    ])
    expect(restarts[1]?.msg).toBe('flaky: restart 2 of 2 within 60 s, in 40 ms')
    const gaveUp = lines.find((l) => l.event === 'collector.gave_up') as Line
    expect(gaveUp.reason).toMatch(/^restart intensity exceeded: 2 restarts within 60000 ms \(max 2\); last error: event source failed: synthetic: injected failure after 20 events$/)
  })

  it('says who stopped a collector: an operator, a reload (removed), its policy; shutdown stops only at debug', async () => {
    const yaml = `http: { enabled: false }
collectors:
  kept: { kind: synthetic, rate: 100, batchSize: 1 }
  manual: { kind: synthetic, rate: 100, batchSize: 1 }
  leaving: { kind: synthetic, rate: 100, batchSize: 1 }
  done: { kind: synthetic, rate: 0, batchSize: 5, total: 5, policy: { restart: transient } }
`
    const { agent, lines } = startAgent(yaml, 'debug')
    await agent.start()
    await agent.manager.stopCollector('manual')
    await waitFor(() => lines.some((l) => l.collector === 'done' && l.event === 'collector.stopped'), 'the transient collector to stop')
    await agent.reload(
      loadConfigText(yaml.replace(/ {2}leaving:.*\n/, ''), 'lifecycle-test', validators(kinds)),
    )
    const stopped = (name: string) => lines.find((l) => l.collector === name && l.event === 'collector.stopped')
    expect(stopped('manual')).toMatchObject({ level: 'info', by: 'operator', msg: 'manual: stopped by an operator' })
    expect(stopped('leaving')).toMatchObject({ level: 'info', by: 'removed', msg: 'leaving: stopped (removed from the configuration)' })
    expect(stopped('done')).toMatchObject({ level: 'info', by: 'policy', msg: 'done: stopped (its restart policy does not restart it)' })
    expect(lines.find((l) => l.collector === 'done' && l.event === 'collector.exited')?.error).toBe('event source ended')
    const reload = lines.find((l) => l.event === 'config.reload') as Line
    expect(reload).toMatchObject({ result: 'ok', removed: ['leaving'], unchanged: ['kept', 'manual', 'done'] })
    expect(agent.reloadStatus.lastSuccess).toBe(true)
    expect(agent.reloadStatus.lastSuccessAt).toBeGreaterThan(0)
    await agent.stop()
    expect(stopped('kept')).toMatchObject({ level: 'debug', by: 'shutdown' })
    expect(lines.at(-1)?.msg).toBe('stopped')
  })

  it('escalation is one error line naming the collector and the reason', async () => {
    const { agent, lines } = startAgent(`http: { enabled: false }
collectors:
  fragile: { kind: synthetic, rate: 0, batchSize: 10, failAfter: 10, policy: { maxRestarts: 0, onExceeded: escalate } }
`)
    await agent.start()
    await waitFor(() => lines.some((l) => l.event === 'supervisor.escalated'), 'the escalation line')
    const line = lines.find((l) => l.event === 'supervisor.escalated') as Line
    expect(line.level).toBe('error')
    expect(line.collector).toBe('fragile')
    expect(line.msg).toMatch(/^supervisor escalated: collector "fragile": restart intensity exceeded: 0 restarts within 60000 ms \(max 0\); stopping every collector$/)
  })

  it('supervisor.events: true puts the same facts into the stream as tapio.supervisor.* events (off by default)', async () => {
    const yaml = (events: boolean) => `http: { enabled: false }
supervisor: { events: ${events} }
collectors:
  flaky: { kind: synthetic, rate: 0, batchSize: 10, failAfter: 20, policy: { maxRestarts: 1, backoff: { initialMs: 20, jitter: 0 } } }
`
    const on = startAgent(yaml(true))
    await on.agent.start()
    await waitFor(() => on.events.some((e) => e.type === 'tapio.supervisor.gave_up'), 'the gave_up event in the stream')
    const sup = on.events.filter((e) => e.source === 'tapio.supervisor')
    expect(sup.map((e) => [e.type, e.severity])).toEqual([
      ['tapio.supervisor.failed', 'warning'],
      ['tapio.supervisor.restart_scheduled', 'info'],
      ['tapio.supervisor.recovered', 'info'],
      ['tapio.supervisor.failed', 'warning'],
      ['tapio.supervisor.gave_up', 'error'],
    ])
    expect(sup.every((e) => e.entity?.kind === 'collector' && e.entity.name === 'flaky' && e.data.collector === 'flaky')).toBe(true)
    expect(sup[1]?.data).toMatchObject({ delayMs: 20, attempt: 1, maxRestarts: 1, withinMs: 60000 })
    expect(sup[4]?.data.reason).toMatch(/^restart intensity exceeded/)
    // Accounted like any collector's events.
    const stats = on.agent.manager.statistics().collectors['tapio.supervisor']
    expect(stats?.accepted).toBe(5)
    expect(stats?.source?.produced).toBe(5)

    const off = startAgent(yaml(false))
    await off.agent.start()
    await waitFor(() => off.lines.some((l) => l.event === 'collector.gave_up'), 'the give-up line')
    expect(off.events.filter((e) => e.type.startsWith('tapio.supervisor.'))).toEqual([])
    expect(off.agent.manager.collectorNames()).toEqual(['flaky'])
  })

  it('writes text lines for people: time, level, message, then key=value fields (quoted when needed)', () => {
    expect(formatLogLine('text', '2026-01-01T00:00:00.000Z', 'warn', 'flaky: failed: boom', { collector: 'flaky', error: 'a "b" c', n: 3 })).toBe(
      '2026-01-01T00:00:00.000Z WARN  flaky: failed: boom collector=flaky error="a \\"b\\" c" n=3\n',
    )
    expect(JSON.parse(formatLogLine('json', 't', 'info', 'm', { a: 1 }))).toEqual({ time: 't', level: 'info', msg: 'm', a: 1 })
  })
})
