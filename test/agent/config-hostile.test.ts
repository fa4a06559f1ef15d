import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfigText } from '../../src/agent/config.js'
import { builtinKinds, validators } from '../../src/agent/registry.js'

/** Hostile and huge config files: a clear ConfigError naming where, never a hang or a stack. */

const checks = validators(builtinKinds())

function problems(text: string): string[] {
  try {
    loadConfigText(text, 'hostile.yaml', checks)
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return [...(e as ConfigError).problems]
  }
  throw new Error('expected a ConfigError')
}

describe('hostile config files', () => {
  it('refuses a billion laughs (alias expansion) with a YAML error', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for (let i = 1; i < 10; i++) lines.push(`${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(9).fill(`*${'abcdefghij'[i - 1]}`).join(',')}]`)
    const p = problems(`${lines.join('\n')}\ncollectors: {}\n`)
    expect(p.join('\n')).toMatch(/^YAML: .*alias/im)
  })

  it('refuses deep nesting without a stack overflow escaping', () => {
    for (const depth of [1_000, 20_000]) {
      const p = problems(`collectors:\n  s:\n    kind: synthetic\n    rate: ${'['.repeat(depth)}${']'.repeat(depth)}\n`)
      expect(p.length).toBeGreaterThan(0)
      expect(p.join('\n')).not.toMatch(/\n\s+at /)
    }
  })

  it('names bad types by path', () => {
    const p = problems('buffer: { capacity: "lots" }\ncollectors: {}\nhttp: { port: 70000 }\n')
    expect(p.join('\n')).toMatch(/buffer\.capacity: expected/)
    expect(p.join('\n')).toMatch(/http\.port: expected/)
  })

  it('reports every repeated key with its line, in every map', () => {
    const p = problems('http: { port: 1 }\ncollectors:\n  s: { kind: synthetic }\n  t: { kind: synthetic, rate: 1, rate: 2 }\n  s: { kind: synthetic }\n')
    expect(p).toEqual([
      'line 4, column 34: Map keys must be unique ("rate" repeated)',
      'line 5, column 3: Map keys must be unique ("s" repeated)',
    ])
  })

  // yaml's own uniqueKeys check compared every key with every other: a map of 60,000 keys took
  // about a minute (1.3 s at 8,000). Found with a Set, it costs what parsing costs (bench:config).
  it('parses a map of 60,000 keys (checking them for repeats) within the test timeout', { timeout: 20_000 }, () => {
    const lines = ['collectors:', '  s:', '    kind: synthetic', '    extra:']
    for (let i = 0; i < 60_000; i++) lines.push(`      k${i}: ${i}`)
    lines.push('      k17: again')
    const p = problems(`${lines.join('\n')}\n`)
    expect(p).toEqual(['line 60005, column 7: Map keys must be unique ("k17" repeated)'])
  })
})
