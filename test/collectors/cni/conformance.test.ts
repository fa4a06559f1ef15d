import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import type { Collector } from '../../../src/core/collector.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'

const root = mkdtempSync(join(tmpdir(), 'tapio-cni-kit-'))
for (const d of ['conf', 'results', 'netns']) mkdirSync(join(root, d))
writeFileSync(join(root, 'conf', '10-a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'bridge' }] }))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/**
 * The fault the cni collector treats as fatal: its rtnetlink reader stops (a recv error other than
 * an overrun). Made for real, in the real addon and kernel: the NETLINK_ROUTE socket's descriptor
 * is closed under the reader thread and its number taken by /dev/null; the next notification (a
 * veth pair added and removed) wakes the reader, whose recv then fails with ENOTSOCK.
 */
function closeNetlinkSocketUnderReader(c: Collector): void {
  const portId = (c as unknown as { netlink?: { socket?: { portId: number } } }).netlink?.socket?.portId
  if (portId === undefined) throw new Error('the cni collector has no netlink socket open')
  // /proc/net/netlink: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode; Eth 0 = NETLINK_ROUTE.
  const row = readFileSync('/proc/net/netlink', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === '0' && f[2] === String(portId))
  if (!row) throw new Error(`no NETLINK_ROUTE socket with port id ${portId} in /proc/net/netlink`)
  const target = `socket:[${row[9]}]`
  const fd = readdirSync('/proc/self/fd').map(Number).find((n) => {
    try {
      return readlinkSync(`/proc/self/fd/${n}`) === target
    } catch {
      return false
    }
  })
  if (fd === undefined) throw new Error(`no descriptor of this process is ${target}`)
  closeSync(fd)
  // The lowest free number is taken first: open until /dev/null lands on the socket's number.
  const extra: number[] = []
  for (let n = openSync('/dev/null', 'r'); ; n = openSync('/dev/null', 'r')) {
    if (n === fd) break
    extra.push(n)
    if (extra.length > 64) throw new Error(`descriptor ${fd} was not reused`)
  }
  // The addon closes it at stop(); only the stray ones are ours to close.
  for (const n of extra) closeSync(n)
  const link = `tkit${process.pid % 100000}`
  execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`])
  execFileSync('ip', ['link', 'del', link])
}

const confFile = JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'bridge' }] })

/**
 * A fault the cni collector rides out by design: its watched CNI config directory goes away (as
 * while a CNI plugin is reinstalled). It reports the network removed and keeps running; resolves
 * once it has produced that report.
 */
async function removeConfigDirectory(c: Collector): Promise<void> {
  const produced = c.statistics?.().produced ?? 0
  rmSync(join(root, 'conf'), { recursive: true, force: true })
  const deadline = Date.now() + 20_000
  while ((c.statistics?.().produced ?? 0) === produced) {
    if (Date.now() > deadline) throw new Error('the cni collector reported nothing after its config directory was removed')
    await new Promise((r) => setTimeout(r, 20))
  }
}

function restoreConfigDirectory(): void {
  mkdirSync(join(root, 'conf'), { recursive: true })
  writeFileSync(join(root, 'conf', '10-a.conflist'), confFile)
}

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
  fail: closeNetlinkSocketUnderReader,
  // The config directory comes back: the collector reports the network again (the event after the fault).
  survive: { inject: removeConfigDirectory, heal: restoreConfigDirectory },
}

describe('cni collector: the collector contract (tapio-collector-manager/testing)', () => {
  for (const c of conformanceCases(subject)) it(c.name, c.run)

  it('the fault behind "fail mid-stream" is the reader stopping: events() throws ENOTSOCK from recv', async () => {
    const c = subject.factory()
    try {
      await c.start(AbortSignal.timeout(30_000))
      let error: unknown
      const reading = (async () => {
        try {
          for await (const _ of c.events());
        } catch (e) {
          error = e
        }
      })()
      closeNetlinkSocketUnderReader(c)
      await reading
      expect(String(error)).toMatch(/netlink stopped: recv failed: ENOTSOCK/)
      expect(c.health()).toMatchObject({ status: 'recoverable_error', message: expect.stringContaining('ENOTSOCK') })
    } finally {
      await c.stop()
    }
  })

  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })
})
