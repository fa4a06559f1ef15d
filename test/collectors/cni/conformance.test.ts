import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'

const root = mkdtempSync(join(tmpdir(), 'tapio-cni-kit-'))
for (const d of ['conf', 'results', 'netns']) mkdirSync(join(root, d))
writeFileSync(join(root, 'conf', '10-a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'bridge' }] }))
afterAll(() => rmSync(root, { recursive: true, force: true }))

// Real rtnetlink and real directories: every start reports the links of this node and the config
// file, so producing needs no action.
const subject = {
  name: 'cni',
  factory: () =>
    new CniCollector({
      cniConfig: { dir: join(root, 'conf') },
      cniResults: { dir: join(root, 'results') },
      netns: { dir: join(root, 'netns') },
      debounceMs: 10,
      pollIntervalMs: 100,
    }),
  produce: () => {},
}

describe('cni collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })
})
