import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { type SseClient, SseClients, sseFrame } from '../../src/inspector/sse-clients.js'
import { waitFor } from '../support/wait.js'

/**
 * The bounded SSE client set over real loopback sockets: a reader that never reads is dropped when
 * what it would hold passes the bound, or when its socket takes nothing for `stuckMs` (driven clock);
 * a reader that keeps up gets every frame; the cap answers 503.
 */

interface Harness {
  server: Server
  port: number
  clients: SseClients
  opened: SseClient[]
  responses: ServerResponse[]
}

const servers: Server[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
})

async function harness(clients: SseClients): Promise<Harness> {
  const h: Harness = { server: createServer(), port: 0, clients, opened: [], responses: [] }
  h.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    h.responses.push(res)
    const c = clients.open(res, ': hi\n\n')
    if (c) h.opened.push(c)
  })
  await new Promise<void>((r) => h.server.listen(0, '127.0.0.1', () => r()))
  servers.push(h.server)
  h.port = (h.server.address() as AddressInfo).port
  return h
}

/** A client that sends its request and then never reads a byte. */
async function neverReading(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  sockets.push(s)
  s.on('error', () => {})
  await new Promise<void>((r) => s.once('connect', () => r()))
  s.write('GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  s.pause()
  return s
}

/** A client that reads everything; returns the frames' event names as they arrive. */
function reading(port: number): { events: string[]; status: Promise<number>; bytes: () => number } {
  const events: string[] = []
  let bytes = 0
  const status = new Promise<number>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/stream' }, (res) => {
      resolve(res.statusCode ?? 0)
      let rest = ''
      res.on('data', (d: Buffer) => {
        bytes += d.length
        rest += d.toString()
        const frames = rest.split('\n\n')
        rest = frames.pop() ?? ''
        for (const f of frames) {
          const m = /^event: (\S+)/m.exec(f)
          if (m) events.push(m[1] as string)
        }
      })
      res.on('error', () => {})
    })
    req.on('error', reject)
  })
  return { events, status, bytes: () => bytes }
}

const payload = 'x'.repeat(4000)

describe('SseClients (bounded server-sent-event clients)', () => {
  it('drops a client that never reads once it would hold more than maxQueuedBytes, and keeps serving one that reads', async () => {
    const clients = new SseClients({ maxClients: 4, maxQueuedBytes: 64 * 1024, stuckMs: 60_000 })
    const h = await harness(clients)
    const reader = reading(h.port)
    expect(await reader.status).toBe(200)
    await neverReading(h.port)
    await waitFor(() => clients.size === 2, 'both clients to be open')
    const stuck = h.opened[1] as SseClient

    // Write until the kernel's socket buffers are full and the bound is passed (a few MB at most).
    let sent = 0
    let held = 0
    while (clients.counts().dropped.slow === 0) {
      held = Math.max(held, stuck.res.writableLength)
      clients.broadcast(sseFrame('transition', { n: sent, payload }), 'essential')
      sent += 1
      // One frame per turn of the event loop, so the reader (in this process) can keep up.
      await new Promise((r) => setImmediate(r))
      if (sent > 100_000) throw new Error('the never-reading client was never dropped')
    }
    // What the agent held for it never passed the bound; the frame that did not fit dropped it.
    expect(held).toBeGreaterThan(16 * 1024)
    expect(held).toBeLessThanOrEqual(64 * 1024)
    expect(stuck.res.destroyed).toBe(true)
    expect(clients.counts()).toMatchObject({ clients: 1, accepted: 2, dropped: { slow: 1, stuck: 0 } })
    // The reading client got every frame.
    await waitFor(() => reader.events.length === sent, `the reader to get all ${sent} frames`, 30_000)
    expect(new Set(reader.events)).toEqual(new Set(['transition']))
  })

  it('skips "latest" frames for a client that is behind and sends it a fresh one when it catches up', async () => {
    const clients = new SseClients({ maxClients: 4, maxQueuedBytes: 64 * 1024 * 1024, stuckMs: 60_000 })
    const h = await harness(clients)
    const caughtUp: SseClient[] = []
    clients.onDrain = (c) => {
      caughtUp.push(c)
      c.send(sseFrame('stats', { fresh: true }), 'latest')
    }
    const sock = await neverReading(h.port)
    await waitFor(() => clients.size === 1, 'the client to be open')
    const c = h.opened[0] as SseClient
    while (c.blockedSince === undefined) {
      clients.broadcast(sseFrame('transition', { payload }), 'essential')
      await new Promise((r) => setImmediate(r))
    }
    const queued = c.res.writableLength
    clients.broadcast(sseFrame('stats', { payload }), 'latest')
    // Skipped: nothing more queued for it.
    expect(c.res.writableLength).toBe(queued)
    expect(c.owesLatest).toBe(true)

    let text = ''
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1')
    })
    sock.resume()
    await waitFor(() => caughtUp.length === 1 && text.includes('"fresh":true'), 'a fresh stats frame after the drain', 30_000)
    expect(c.owesLatest).toBe(false)
    expect(clients.counts().dropped).toEqual({ slow: 0, stuck: 0 })
  })

  it('drops a client whose socket takes nothing for stuckMs (driven clock)', async () => {
    const clock = new ManualClock(1_000)
    const clients = new SseClients({ maxClients: 4, maxQueuedBytes: 64 * 1024 * 1024, stuckMs: 15_000 }, clock)
    const h = await harness(clients)
    await neverReading(h.port)
    await waitFor(() => clients.size === 1, 'the never-reading client to be open')
    const stuck = h.opened[0] as SseClient
    const reader = reading(h.port)
    expect(await reader.status).toBe(200)
    while (stuck.blockedSince === undefined) {
      clients.broadcast(sseFrame('transition', { payload }), 'essential')
      await new Promise((r) => setImmediate(r))
    }
    clock.advance(14_999)
    clients.sweep()
    expect(clients.counts().dropped.stuck).toBe(0)
    clock.advance(1)
    clients.sweep()
    expect(clients.counts()).toMatchObject({ clients: 1, dropped: { slow: 0, stuck: 1 } })
    expect(stuck.res.destroyed).toBe(true)
  })

  it('turns away clients beyond maxClients with 503 and retry-after, and takes new ones when a place frees up', async () => {
    const clients = new SseClients({ maxClients: 2, maxQueuedBytes: 1024 * 1024, stuckMs: 60_000 })
    const h = await harness(clients)
    const a = reading(h.port)
    const b = reading(h.port)
    expect([await a.status, await b.status]).toEqual([200, 200])
    const third = await new Promise<IncomingMessage>((resolve) => get({ host: '127.0.0.1', port: h.port, path: '/stream' }, resolve))
    expect(third.statusCode).toBe(503)
    expect(third.headers['retry-after']).toBe('5')
    third.resume()
    expect(clients.counts()).toMatchObject({ clients: 2, accepted: 2, rejected: 1 })

    h.responses[0]?.destroy()
    await waitFor(() => clients.size === 1, 'a place to free up')
    const d = reading(h.port)
    expect(await d.status).toBe(200)
    expect(clients.counts()).toMatchObject({ clients: 2, accepted: 3, rejected: 1 })
  })
})
