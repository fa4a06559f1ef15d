import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfigText } from '../../src/agent/config.js'

function problems(yaml: string): string[] {
  try {
    loadConfigText(yaml, 't.yaml', undefined, {})
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems]
    throw e
  }
  throw new Error('the config was accepted')
}

describe('processors: in the agent config', () => {
  it('defaults to the pod enrichment alone, and takes a chain in order', () => {
    expect(loadConfigText('{}', 't.yaml', undefined, {}).processors).toEqual([{ type: 'enrich' }])
    const c = loadConfigText(
      `processors:
  - { type: filter, name: no-debug, exclude: { severities: [debug] } }
  - { type: sample, perType: { "kernel.*": 10 }, rateLimit: { key: source, perSecond: 100 } }
  - { type: drop, fields: [data.argv] }
  - { type: rename, fields: { data.comm: data.command } }
  - { type: enrich }
  - { type: route, routes: [ { match: { minSeverity: error }, outputs: [stdout] } ], default: [] }
`,
      't.yaml',
      undefined,
      {},
    )
    expect(c.processors.map((p) => p.type)).toEqual(['filter', 'sample', 'drop', 'rename', 'enrich', 'route'])
    expect(loadConfigText('processors: []', 't.yaml', undefined, {}).processors).toEqual([])
  })

  it('names the path of every problem', () => {
    const p = problems(`processors:
  - { type: filter, include: { where: 'severity == ' } }
  - { type: filter, include: { where: 'process.env == 1' } }
  - { type: drop, fields: [id] }
  - { type: sample, name: filter-2 }
  - { type: route, routes: [ { match: {}, outputs: [nats] } ], default: [file] }
`)
    expect(p).toEqual([
      'processors[0].include.where: unexpected end at column 13 of "severity == "',
      'processors[1].include.where: unknown field "process.env" (fields start with id, timestamp, type, source, severity, data, k8s, entity, trace) at column 1 of "process.env == 1"',
      'processors[2].fields: drop field "id": expected a path under data, k8s, entity, trace (e.g. data.argv)',
      'processors[3].name: "filter-2" is used by an earlier processor (names are drop reasons: make them unique)',
      'processors[4].routes[0].outputs[0]: expected a configured output (stdout), got "nats"',
      'processors[4].default[0]: expected a configured output (stdout), got "file"',
    ])
    expect(problems('processors:\n  - { type: route, routes: [] }\n  - { type: enrich }\n')).toEqual(['processors[0]: a route processor must be the last one'])
    expect(problems('processors:\n  - { type: sample, perType: { x.y: 0 } }\n').join('\n')).toMatch(/^processors\[0\]/)
    expect(problems('processors:\n  - { type: nope }\n').join('\n')).toMatch(/^processors\[0\]/)
  })

  it('takes a correlate processor and names the path of its problems', () => {
    const c = loadConfigText('processors:\n  - { type: enrich }\n  - { type: correlate, chains: [oom-kill], windowMs: 60000, maxKeys: 500 }\n', 't.yaml', undefined, {})
    expect(c.processors[1]).toEqual({ type: 'correlate', chains: ['oom-kill'], windowMs: 60000, maxKeys: 500 })
    expect(problems('processors:\n  - { type: correlate, chains: [oom-kill, systemd-nope] }\n')).toEqual([
      'processors[0].chains[1]: expected a chain (oom-kill, veth-sandbox, systemd-exit), got "systemd-nope"',
    ])
    expect(problems('processors:\n  - { type: correlate, windowMs: 0 }\n').join('\n')).toMatch(/^processors\[0\]/)
  })
})
