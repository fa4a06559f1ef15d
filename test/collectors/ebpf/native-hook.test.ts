import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { CgroupIdsOnly } from '../../../src/collectors/ebpf/decode.js'
import { BatchDecoder } from '../../../src/collectors/ebpf/index.js'
import { BpfSession, loadBpfAddon } from '../../../src/native/bpf-addon.js'
import { BootClock, RecordKind } from '../../../src/native/bpf-records.js'
import { record } from './records.js'
import { waitFor } from './helpers.js'

function frames(records: readonly Buffer[]): Buffer {
  return Buffer.concat(
    records.flatMap((r) => {
      const len = Buffer.alloc(4)
      len.writeUInt32LE(r.length)
      return [len, r]
    }),
  )
}

describe('tapio_bpf addon: malformed records through the native path (test hook)', () => {
  it('counts and skips them in the addon and the decoder, without crashing', async () => {
    const loaded = loadBpfAddon()
    if (Result.isFailure(loaded)) throw loaded.failure
    const addon = loaded.success
    const session = BpfSession.create(addon, {
      ringBytes: 4096,
      wakeupBytes: 4096,
      drainIntervalMs: 5,
      batchBytes: 65536,
      maxBatchesInFlight: 2,
      programs: [],
      openPrefixes: [],
      probePid: 0,
    })
    const opened = session.open()
    expect(opened).toEqual({ attached: [], failed: [] })
    const decoder = new BatchDecoder(new BootClock(addon.clockOffset()), new CgroupIdsOnly())
    const delivered: unknown[] = []
    let ended = false
    session.start((batch) => {
      if (batch === null) {
        ended = true
        return
      }
      delivered.push(...decoder.decode(batch))
      session.release(1)
    })
    try {
      const n = session.injectForTest(
        frames([
          Buffer.alloc(8), // shorter than a header: dropped in the addon
          Buffer.alloc(5000), // longer than any record: dropped in the addon
          record(RecordKind.probe, 48, { tgid: 7 }),
          record(99, 48), // unknown kind: reaches JS, dropped by the decoder
          record(RecordKind.exec, 100), // wrong size for its kind
          record(RecordKind.probe, 48, { tgid: 8 }),
        ]),
      )
      expect(n).toBe(6)
      await waitFor('decoded batch', () => delivered.length === 2)
      expect(delivered.map((e) => (e as { data: { pid: number } }).data.pid)).toEqual([7, 8])
      expect(session.counters()).toMatchObject({ consumed: 6, malformed: 2, forwarded: 4 })
      expect(decoder.counters).toMatchObject({ records: 4, events: 2, malformed: 2, unknownKind: 1, badSize: 1 })
    } finally {
      session.stop()
      await waitFor('end marker', () => ended)
      session.close()
    }
  })
})
