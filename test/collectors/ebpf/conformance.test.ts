import { execFileSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'

// Real BPF programs in the running kernel; a process run makes them produce.
const subject = {
  name: 'ebpf',
  factory: () => new EbpfCollector({ programs: { tcp: false, oom: false }, ringBufferBytes: 1 << 16 }),
  produce: () => {
    execFileSync('/bin/true')
  },
}

describe('ebpf collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })
})
