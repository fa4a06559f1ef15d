import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { configJsonSchema } from '../../src/agent/config-schema.js'
import { ConfigError, defaultConfigYaml, loadConfigText, resolveConfig } from '../../src/agent/config.js'
import { builtinKinds, validators } from '../../src/agent/registry.js'

const kinds = builtinKinds()
const checks = validators(kinds)

/** Paths into a valid config where a wrong value must be reported by its path. */
const TARGETS: { path: (string | number)[]; good: unknown }[] = [
  { path: ['buffer', 'capacity'], good: 100 },
  { path: ['buffer', 'policy'], good: 'block' },
  { path: ['buffer', 'sampling', 'keepOneIn'], good: 5 },
  { path: ['supervisor', 'strategy'], good: 'one_for_all' },
  { path: ['supervisor', 'policy', 'maxRestarts'], good: 3 },
  { path: ['supervisor', 'policy', 'backoff', 'jitter'], good: 0.1 },
  { path: ['collectors', 'gen', 'rate'], good: 10 },
  { path: ['collectors', 'gen', 'policy', 'restart'], good: 'transient' },
  { path: ['collectors', 'gen', 'enabled'], good: 'auto' },
  { path: ['collectors', 'units', 'include', 0], good: 'nginx*.service' },
  { path: ['collectors', 'units', 'unitTypes', 0], good: 'service' },
  { path: ['collectors', 'kube', 'resources', 0], good: 'pods' },
  { path: ['outputs', 'file', 'maxBytes'], good: 1000 },
  { path: ['http', 'port'], good: 9464 },
  { path: ['log', 'level'], good: 'info' },
]

function validConfig(): Record<string, unknown> {
  return {
    buffer: { capacity: 100, policy: 'block', sampling: { keepOneIn: 5 } },
    supervisor: { strategy: 'one_for_all', policy: { maxRestarts: 3, backoff: { jitter: 0.1 } } },
    collectors: {
      gen: { kind: 'synthetic', rate: 10, enabled: 'auto', policy: { restart: 'transient' } },
      units: { kind: 'systemd', include: ['nginx*.service'], unitTypes: ['service'] },
      kube: { kind: 'kubernetes', resources: ['pods'] },
    },
    outputs: { file: { path: '/tmp/x.ndjson', maxBytes: 1000 } },
    http: { port: 9464 },
    log: { level: 'info' },
  }
}

function setAt(obj: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let o = obj as Record<string | number, unknown>
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>
  o[path.at(-1) as string | number] = value
}

function render(path: (string | number)[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('')
}

const wrongValue = fc.oneof(
  fc.string({ maxLength: 8 }).filter((s) => !['block', 'one_for_all', 'transient', 'auto', 'service', 'pods', 'info', 'sample', 'debug', 'warn', 'error', 'permanent', 'temporary', 'one_for_one', 'rest_for_one', 'drop-newest', 'drop-oldest', 'socket', 'timer', 'nodes'].includes(s) && !s.includes('*')),
  fc.integer({ min: -1000, max: -1 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
)

describe('agent config', () => {
  it('accepts the valid base config and the embedded default', () => {
    expect(() => resolveConfig(validConfig(), 'valid', checks)).not.toThrow()
    const d = loadConfigText(defaultConfigYaml(checks.keys()), 'default', checks)
    expect(d.collectors.map((c) => [c.name, c.enabled])).toEqual([
      ['ebpf', 'auto'],
      ['kubernetes', 'auto'],
      ['systemd', 'auto'],
      ['cni', 'auto'],
    ])
  })

  it('reports every generated bad value by its path, never with a stack trace', () => {
    fc.assert(
      fc.property(fc.subarray(TARGETS, { minLength: 1, maxLength: 4 }), fc.array(wrongValue, { minLength: 4, maxLength: 4 }), (targets, values) => {
        const cfg = validConfig()
        targets.forEach((t, i) => setAt(cfg, t.path, values[i]))
        let error: unknown
        try {
          resolveConfig(cfg, 'generated.yaml', checks)
        } catch (e) {
          error = e
        }
        // Some generated values are valid after all (e.g. a numeric string key); only check failures.
        if (error === undefined) return
        expect(error).toBeInstanceOf(ConfigError)
        const problems = (error as ConfigError).problems
        for (const p of problems) {
          expect(p).toMatch(/^[A-Za-z_[(][^:]*: /)
          expect(p).not.toMatch(/\n\s+at /)
        }
        // At least one wrong value is named by its exact path.
        const named = targets.filter((t) => problems.some((p) => p.startsWith(render(t.path))))
        expect(named.length).toBeGreaterThan(0)
      }),
      { numRuns: 300 },
    )
  })

  it('names unknown keys and unknown kinds', () => {
    expect(() => resolveConfig({ colectors: {} }, 'x', checks)).toThrow(/colectors: unknown key/)
    expect(() => resolveConfig({ collectors: { a: { kind: 'nope' } } }, 'x', checks)).toThrow(/collectors\.a\.kind: expected a known collector kind/)
    expect(() => resolveConfig({ collectors: { units: { kind: 'systemd', include: ['a', 'b', 7] } } }, 'x', checks)).toThrow(
      /collectors\.units\.include\[2\]: expected/,
    )
  })

  it('turns any text into a config or a ConfigError, never another exception', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          loadConfigText(text, 'fuzz.yaml', checks)
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('keeps docs/agent-config.schema.json in step with the code', () => {
    const committed = JSON.parse(readFileSync(new URL('../../docs/agent-config.schema.json', import.meta.url), 'utf8')) as unknown
    expect(committed).toEqual(JSON.parse(JSON.stringify(configJsonSchema(kinds))))
  })
})

describe('environment references in the config', () => {
  it('expands ${NAME} and ${NAME:-default}, keeps $${ literal, and names the path of an unset one', () => {
    const text = `node: \${NODE_NAME}
collectors:
  kube:
    kind: kubernetes
    selectors: { pods: { fieldSelector: "spec.nodeName=\${NODE_NAME}" } }
    labelSelector: "\${MISSING_OK:-app=web}"
  gen: { kind: synthetic, type: "synthetic.tick" }
outputs: { file: { path: "/tmp/$\${literal}.ndjson" } }
`
    const c = loadConfigText(text, 'env.yaml', checks, { NODE_NAME: 'worker-7' })
    expect(c.node).toBe('worker-7')
    const kube = c.collectors.find((x) => x.name === 'kube')
    expect(kube?.config).toEqual({ selectors: { pods: { fieldSelector: 'spec.nodeName=worker-7' } }, labelSelector: 'app=web' })
    expect(c.outputs.file?.path).toBe('/tmp/${literal}.ndjson')
    expect(() => loadConfigText('node: ${NODE_NAME}\n', 'env.yaml', checks, {})).toThrow(/node: environment variable NODE_NAME is not set/)
  })
})
