/**
 * The bus handshake's and the calls' timeouts run on the collector's clock: a ManualClock decides
 * when they fire, while the socket, the dbus-daemon and the silence are real.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SystemdCollector } from '../../../src/collectors/systemd/index.js'
import { ManualClock } from '../../../src/core/clock.js'
import { type FakeSystemd, startFakeSystemd } from './fake-systemd.js'
import { waitFor } from './user-manager.js'

const TIMEOUT = 5_000

/** Settles `p` into an observable state, so a test can check it has not settled yet. */
function track<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const t: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' }
  p.then(
    () => {
      t.state = 'resolved'
    },
    (e: unknown) => {
      t.state = 'rejected'
      t.error = e
    },
  )
  return t
}

describe('systemd collector on a driven clock', () => {
  let fake: FakeSystemd
  const dir = mkdtempSync(join(tmpdir(), 'tapio-systemd-clock-'))

  beforeAll(async () => {
    fake = await startFakeSystemd({ silent: ['Subscribe'] })
  })

  afterAll(async () => {
    await fake?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('gives up on a call systemd never answers exactly callTimeoutMs later on the clock', async () => {
    const clock = new ManualClock(0)
    const c = new SystemdCollector({ address: fake.busAddress, callTimeoutMs: TIMEOUT }, undefined, { clock })
    try {
      const start = track(c.start(new AbortController().signal))
      // The handshake, GetNameOwner and AddMatch are answered by the real dbus-daemon; Subscribe
      // reaches the stand-in, which keeps it.
      await waitFor('Subscribe to reach the silent stand-in', () => (fake.unanswered.includes('Subscribe') ? true : undefined))
      await clock.advanceAsync(TIMEOUT - 1)
      expect(start.state).toBe('pending')
      await clock.advanceAsync(1)
      expect(start.state).toBe('rejected')
      expect(String(start.error)).toContain(`org.freedesktop.systemd1.Manager.Subscribe got no reply within ${TIMEOUT} ms`)
    } finally {
      await c.stop()
    }
    expect(clock.pending).toBe(0)
  })

  it('gives up on a bus that accepts the connection and never speaks exactly callTimeoutMs later', async () => {
    const path = join(dir, 'mute.sock')
    const sockets: Socket[] = []
    let accepted = 0
    const server = createServer((s) => {
      accepted += 1
      sockets.push(s)
    })
    await new Promise<void>((r) => server.listen(path, r))
    const clock = new ManualClock(0)
    const c = new SystemdCollector({ address: `unix:path=${path}`, callTimeoutMs: TIMEOUT }, undefined, { clock })
    try {
      const start = track(c.start(new AbortController().signal))
      await waitFor('the connection to be accepted', () => (accepted > 0 ? true : undefined))
      await clock.advanceAsync(TIMEOUT - 1)
      expect(start.state).toBe('pending')
      await clock.advanceAsync(1)
      expect(start.state).toBe('rejected')
      expect(String(start.error)).toContain(`no answer from unix:path=${path} within ${TIMEOUT} ms`)
    } finally {
      await c.stop()
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
    expect(clock.pending).toBe(0)
  })
})
