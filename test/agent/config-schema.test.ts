import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Ajv2020 } from 'ajv/dist/2020.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { configJsonSchema, undescribed } from '../../src/agent/config-schema.js'
import { ConfigError, defaultConfigYaml, expandEnv, loadConfigText, resolveConfig } from '../../src/agent/config.js'
import { builtinKinds, validators } from '../../src/agent/registry.js'
import { CLI, ROOT } from './support.js'

const exec = promisify(execFile)
const kinds = builtinKinds()
const checks = validators(kinds)
const schema = configJsonSchema(kinds)
const ajv = new Ajv2020({ allErrors: true, strict: true })
const validate = ajv.compile(schema)

/** check-config's verdict on a parsed document (no environment references in these inputs). */
function agentAccepts(doc: unknown): boolean {
  try {
    resolveConfig(doc, 'parity', checks)
    return true
  } catch (e) {
    if (e instanceof ConfigError) return false
    throw e
  }
}

function schemaAccepts(doc: unknown): boolean {
  return validate(doc) === true
}

const GOOD = [
  defaultConfigYaml(checks.keys()),
  'collectors: {}\n',
  '{}\n',
  `node: worker-1
buffer: { capacity: 5000, policy: sample, sampling: { highWaterMark: 0.9, keepOneIn: 4 } }
supervisor:
  strategy: rest_for_one
  stopTimeoutMs: 2000
  policy: { restart: transient, maxRestarts: 3, withinMs: 1000, onExceeded: escalate, backoff: { initialMs: 10, maxMs: 100, factor: 1.5, jitter: 0 } }
collectors:
  ebpf: { enabled: auto }
  units: { kind: systemd, bus: system, include: ["*.service"], exclude: ["session-*.scope"], policy: { maxRestarts: 10 } }
  kubernetes: { enabled: auto, namespaces: [default, prod] }
  ebpf-2: { kind: ebpf, enabled: false }
  gen: { kind: synthetic, rate: 5, batchSize: 2, total: 10, type: synthetic.tick, severity: warning }
  cni: { kind: cni }
outputs:
  stdout: { enabled: false }
  file: { path: /var/log/tapio/events.ndjson, maxBytes: 1048576, maxFiles: 3 }
http: { enabled: true, host: 0.0.0.0, port: 9464, token: "0123456789abcdef0123", allowControl: true, tailQueue: 10 }
readiness: { require: any, graceMs: 1000 }
log: { level: debug, format: text }
`,
  // The DaemonSet's ConfigMap.
  (parse(readFileSync(join(ROOT, 'deploy/kubernetes/configmap.yaml'), 'utf8')) as { data: Record<string, string> }).data['agent.yaml'] as string,
]

const BAD = [
  'buffer: { capacity: 0 }\n',
  'buffer: { polcy: block }\n',
  'collectors:\n  gen: { kind: synthetic, rat: 5 }\n',
  'collectors:\n  units: { kind: systemd, incude: ["*.service"] }\n',
  'collectors:\n  units: { kind: systemd, bus: session2 }\n',
  'collectors:\n  what: { kind: nope }\n',
  'collectors:\n  nameless: { rate: 5 }\n',
  'collectors:\n  "bad name!": { kind: synthetic }\n',
  'collectors:\n  ebpf: { enabeld: auto }\n',
  'collectors:\n  ebpf: { kind: synthetic, rate: -1 }\n',
  'collectors:\n  ebpf:\n',
  'http: { host: 0.0.0.0 }\n',
  'http: { port: 70000 }\n',
  'http: { token: short }\n',
  'log: { level: loud }\n',
  'log: { format: xml }\n',
  'readiness: { require: some }\n',
  'supervisor: { policy: { backoff: { jitter: 1 } } }\n',
  'outputs: { file: { maxBytes: 5 } }\n',
  'unknown: 1\n',
  '[1, 2]\n',
]

describe('the configuration JSON Schema', () => {
  it('is a standalone Draft 2020-12 schema: closed objects, a description for every field', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(schema).not.toHaveProperty('dialect')
    const text = JSON.stringify(schema)
    expect(text).not.toContain('"additionalProperties":true')
    expect(text).not.toContain('#/definitions/')
    expect((text.match(/"additionalProperties":false/g) ?? []).length).toBeGreaterThan(40)
    expect(undescribed(schema)).toEqual([])
  })

  it('gives the same verdict as check-config on good and bad configs', () => {
    // `${NAME}` references are expanded before validation (the DaemonSet's ConfigMap uses them).
    const env = { NODE_NAME: 'node-1', POD_NAMESPACE: 'tapio-system', POD_NAME: 'tapio-agent-x1', POD_IP: '10.0.0.5' }
    for (const text of GOOD) {
      const doc = expandEnv(parse(text) ?? {}, env, 'parity')
      expect([agentAccepts(doc), schemaAccepts(doc), text]).toEqual([true, true, text])
    }
    for (const text of BAD) {
      const doc = parse(text) ?? {}
      expect([agentAccepts(doc), schemaAccepts(doc), text]).toEqual([false, false, text])
    }
  })

  it('agrees with check-config on generated mutations of a valid config (wrong values, misspelt and unknown keys)', () => {
    const base = parse(GOOD[3] as string) as Record<string, unknown>
    const paths: string[][] = []
    const walk = (v: unknown, at: string[]) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return
      for (const [k, x] of Object.entries(v)) {
        paths.push([...at, k])
        walk(x, [...at, k])
      }
    }
    walk(base, [])
    const value = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -5, max: 70000 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }), fc.constant({}))
    const mutation = fc.record({
      path: fc.constantFrom(...paths),
      kind: fc.constantFrom('value', 'rename', 'add'),
      value,
      key: fc.string({ minLength: 1, maxLength: 8 }),
    })
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const doc = structuredClone(base)
        for (const m of ms) {
          let parent = doc as Record<string, unknown>
          for (const k of m.path.slice(0, -1)) {
            const next = parent[k]
            if (next === null || typeof next !== 'object' || Array.isArray(next)) return
            parent = next as Record<string, unknown>
          }
          const last = m.path.at(-1) as string
          if (!(last in parent)) return
          if (m.kind === 'value') parent[last] = m.value
          else if (m.kind === 'rename') {
            parent[`${last}${m.key}`] = parent[last]
            delete parent[last]
          } else parent[m.key] = m.value
        }
        // readiness.require names collectors: the one check a JSON Schema cannot make.
        const r = (doc as { readiness?: { require?: unknown } }).readiness
        if (r && typeof r === 'object' && Array.isArray(r.require)) return
        expect(schemaAccepts(doc), JSON.stringify(doc)).toBe(agentAccepts(doc))
      }),
      { numRuns: 400, seed: 14 },
    )
  })

  it('`tapio-agent config-schema` prints it, and docs/agent-config.schema.json is that output', async () => {
    const { stdout } = await exec(process.execPath, [CLI, 'config-schema'], { cwd: ROOT })
    expect(JSON.parse(stdout)).toEqual(JSON.parse(JSON.stringify(schema)))
    expect(JSON.parse(readFileSync(join(ROOT, 'docs/agent-config.schema.json'), 'utf8'))).toEqual(JSON.parse(stdout))
  })
})

describe('check-config', () => {
  it('reports every problem in one pass, with "did you mean" for misspelt keys', async () => {
    const text = `buffer: { capacity: 0, polcy: block }
collectors:
  gen: { kind: synthetic, rat: 5, batchSize: 0, enabeld: true, policy: { maxRestart: 3 } }
  units: { kind: systemd, incude: ["*.service"] }
http: { host: 0.0.0.0, prot: 1 }
`
    let problems: readonly string[] = []
    try {
      loadConfigText(text, 'one-pass', checks)
    } catch (e) {
      problems = (e as ConfigError).problems
    }
    expect([...problems].sort()).toEqual(
      [
        'buffer.capacity: expected a value greater than or equal to 1, got 0',
        'buffer.polcy: unknown key (not part of the configuration); did you mean "policy"?',
        'collectors.gen.batchSize: expected a value greater than or equal to 1, got 0',
        'collectors.gen.enabeld: unknown key (not part of the configuration); did you mean "enabled"?',
        'collectors.gen.policy.maxRestart: unknown key (not part of the configuration); did you mean "maxRestarts"?',
        'collectors.gen.rat: unknown key (not part of the configuration); did you mean "rate"?',
        'collectors.units.incude: unknown key (not part of the configuration); did you mean "include"?',
        'http.prot: unknown key (not part of the configuration); did you mean "port"?',
        'http.token: expected a bearer token (16+ characters) because http.host "0.0.0.0" is not loopback',
      ].sort(),
    )
    const far = (() => {
      try {
        loadConfigText('buffer: { zzzzzz: 1 }\n', 'far', checks)
      } catch (e) {
        return (e as ConfigError).problems
      }
    })()
    expect(far).toEqual(['buffer.zzzzzz: unknown key (not part of the configuration)'])
  })
})
