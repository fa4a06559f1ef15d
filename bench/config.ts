/**
 * Config parsing benchmark: time to parse a config whose one map has N keys, with
 *   - `agent`: the agent's `parseYaml` (duplicate keys found with one Set per map);
 *   - `uniqueKeys`: yaml's own `uniqueKeys: true` (what the agent used before; pairwise);
 *   - `floor`: yaml with no duplicate check at all (the baseline: parsing alone).
 * Medians of `--runs` runs per size; `uniqueKeys` only up to 16k keys (it is quadratic).
 *
 *   npm run bench:config [-- --runs 5]
 *
 * The last output line is one JSON object.
 */
import { parseArgs } from 'node:util'
import { parseDocument } from 'yaml'
import { parseYaml } from '../src/agent/config.js'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } })
const runs = Number(values.runs)

function text(n: number): string {
  const lines = ['collectors:', '  s:', '    kind: synthetic', '    extra:']
  for (let i = 0; i < n; i++) lines.push(`      k${i}: ${i}`)
  return `${lines.join('\n')}\n`
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

function time(fn: () => void): number {
  const t = performance.now()
  fn()
  return performance.now() - t
}

const results: { keys: number; agentMs: number; floorMs: number; uniqueKeysMs: number | null; agentToFloor: number }[] = []
for (const n of [2_000, 4_000, 8_000, 16_000, 64_000]) {
  const t = text(n)
  const agent: number[] = []
  const floor: number[] = []
  const unique: number[] = []
  for (let r = 0; r < runs; r++) {
    agent.push(time(() => parseYaml(t, 'bench')))
    floor.push(time(() => parseDocument(t, { uniqueKeys: false }).toJS()))
    if (n <= 16_000) unique.push(time(() => parseDocument(t, { uniqueKeys: true }).toJS()))
  }
  const row = {
    keys: n,
    agentMs: Math.round(median(agent)),
    floorMs: Math.round(median(floor)),
    uniqueKeysMs: unique.length ? Math.round(median(unique)) : null,
    agentToFloor: Number((median(agent) / median(floor)).toFixed(2)),
  }
  results.push(row)
  console.log(JSON.stringify(row))
}
console.log(JSON.stringify({ bench: 'config', runs, results }))
