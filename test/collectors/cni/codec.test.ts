import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeBatch, encodeDumpRequest, formatIp, loadNetlinkAddon, RouteSocket, RTNLGRP } from '../../../src/native/netlink.js'
import { sleep } from './helpers.js'

function frame(kind: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32LE(kind, 0)
  head.writeUInt32LE(payload.length, 4)
  return Buffer.concat([head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)])
}

/** A real link dump from this kernel, captured through the addon. */
async function captureLinkDump(): Promise<Buffer[]> {
  const raw: Buffer[] = []
  const handle = loadNetlinkAddon().open([], 1 << 20, (b) => raw.push(b))
  try {
    handle.send(encodeDumpRequest('links', 1))
    const deadline = Date.now() + 20_000
    while (!raw.some((b) => decodeBatch(b).records.some((r) => r.kind === 'done')) && Date.now() < deadline) await sleep(10)
  } finally {
    handle.close()
  }
  return raw
}

describe('rtnetlink codec', () => {
  it('formats IPv6 like RFC 5952 and IPv4 as a dotted quad', () => {
    const v6 = (s: string): Buffer => Buffer.from(s.replace(/:/g, ''), 'hex')
    expect(formatIp(Buffer.from([198, 18, 0, 1]))).toBe('198.18.0.1')
    expect(formatIp(v6('fd00:0000:0000:0000:0000:0000:0000:0001'))).toBe('fd00::1')
    expect(formatIp(v6('0000:0000:0000:0000:0000:0000:0000:0001'))).toBe('::1')
    expect(formatIp(v6('0000:0000:0000:0000:0000:0000:0000:0000'))).toBe('::')
    expect(formatIp(v6('fe80:0000:0000:0000:00fc:00ff:fe00:0001'))).toBe('fe80::fc:ff:fe00:1')
    expect(formatIp(v6('2001:0db8:0000:0001:0000:0000:0000:0001'))).toBe('2001:db8:0:1::1')
    expect(formatIp(v6('2001:0db8:0000:0000:0001:0000:0000:0001'))).toBe('2001:db8::1:0:0:1')
    expect(formatIp(v6('2001:0db8:0001:0001:0001:0001:0000:0001'))).toBe('2001:db8:1:1:1:1:0:1')
  })

  it('decodes a real link dump from the kernel', async () => {
    const batches = await captureLinkDump()
    const decoded = batches.map(decodeBatch)
    const links = decoded.flatMap((d) => d.records).filter((r) => r.kind === 'link')
    expect(links.find((l) => l.kind === 'link' && l.index === 1)).toMatchObject({ name: 'lo', op: 'new', up: true })
    expect(decoded.reduce((n, d) => n + d.malformed, 0)).toBe(0)
  })

  it('never throws on cut or corrupted kernel bytes; damage is counted as malformed', async () => {
    const [sample] = await captureLinkDump()
    if (!sample) throw new Error('no dump captured')
    fc.assert(
      fc.property(fc.nat({ max: sample.length }), fc.array(fc.tuple(fc.nat({ max: sample.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (cut, flips) => {
        const damaged = Buffer.from(sample.subarray(0, cut))
        for (const [at, v] of flips) if (at < damaged.length) damaged[at] = v
        const d = decodeBatch(damaged)
        // What survives is still validated: no half-read link leaks through.
        for (const r of d.records) if (r.kind === 'link') expect(r.index > 0 && r.name.length > 0).toBe(true)
      }),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        decodeBatch(frame(1, Buffer.from(bytes)))
      }),
      { numRuns: 500 },
    )
    // A frame whose length runs past the buffer, and a datagram whose message does.
    expect(decodeBatch(Buffer.from([1, 0, 0, 0, 200, 0, 0, 0, 1, 2])).malformed).toBe(1)
    const msg = Buffer.alloc(16)
    msg.writeUInt32LE(64, 0)
    expect(decodeBatch(frame(1, msg)).malformed).toBe(1)
  })

  it('overrun and fatal frames become records', () => {
    const errno = Buffer.alloc(4)
    errno.writeInt32LE(9, 0)
    expect(decodeBatch(Buffer.concat([frame(2, Buffer.alloc(0)), frame(3, errno)])).records).toEqual([{ kind: 'overrun' }, { kind: 'fatal', errno: 9 }])
  })

  it('RouteSocket.close is safe twice and send after close is a typed error', () => {
    const s = RouteSocket.open(loadNetlinkAddon(), { groups: [RTNLGRP.LINK] }, () => {})
    expect(s.portId).toBeGreaterThan(0)
    s.close()
    s.close()
    expect(() => s.send(encodeDumpRequest('links', 2))).toThrow(/EBADF/)
  })
})
