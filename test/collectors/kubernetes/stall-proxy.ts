import net from 'node:net'

/**
 * A TCP proxy in front of the API server for one agent, whose network can be stalled: while
 * stalled, no byte moves in either direction on any connection (old or new), as with a
 * partitioned node; connections stay open, so only timeouts notice.
 */
export class StallProxy {
  private readonly server: net.Server
  private readonly pairs = new Set<[net.Socket, net.Socket]>()
  private stalledNow = false
  private port = 0

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host)
      const pair: [net.Socket, net.Socket] = [client, upstream]
      this.pairs.add(pair)
      client.pipe(upstream)
      upstream.pipe(client)
      const close = () => {
        this.pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      }
      client.on('error', close)
      upstream.on('error', close)
      client.on('close', close)
      upstream.on('close', close)
      if (this.stalledNow) this.pause(pair)
    })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as net.AddressInfo).port
  }

  stall(): void {
    this.stalledNow = true
    for (const p of this.pairs) this.pause(p)
  }

  private pause([a, b]: [net.Socket, net.Socket]): void {
    a.unpipe(b)
    b.unpipe(a)
    a.pause()
    b.pause()
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
    this.pairs.clear()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
