import type { Server, ServerOptions } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * Time limits for the agent's HTTP server. Node's defaults (60 s for headers, 5 min per request,
 * checked every 30 s) let half-open or trickling connections hold file descriptors for minutes.
 */
export const SERVER_TIMEOUTS: ServerOptions = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  // How often the two timeouts above are enforced.
  connectionsCheckingInterval: 1_000,
  requireHostHeader: true,
}

/**
 * At most `max` open connections. Past the cap the oldest connection that is not serving a request
 * (one that never finished its headers, or an idle keep-alive) is closed to make room: a flood of
 * half-open connections then evicts itself instead of locking out a probe. Only when every
 * connection is busy (long-lived streams) is the newcomer closed. `server.maxConnections` would
 * refuse the newcomer instead, which is exactly what keeps `/healthz` out during such a flood.
 */
export function capConnections(server: Server, max: number): { readonly open: () => number; readonly evicted: () => number } {
  // Insertion order = age; `true` while a request is being served on it.
  const sockets = new Map<Socket, boolean>()
  let evicted = 0
  server.on('connection', (socket: Socket) => {
    sockets.set(socket, false)
    socket.once('close', () => sockets.delete(socket))
    if (sockets.size <= max) return
    for (const [s, busy] of sockets) {
      if (!busy && s !== socket) {
        sockets.delete(s)
        s.destroy()
        evicted += 1
        return
      }
    }
    sockets.delete(socket)
    socket.destroy()
    evicted += 1
  })
  server.on('request', (req, res) => {
    const socket = req.socket
    if (!sockets.has(socket)) return
    // Re-inserted: a socket in use is younger than the idle ones, which go first.
    sockets.delete(socket)
    sockets.set(socket, true)
    res.once('close', () => {
      if (sockets.has(socket)) sockets.set(socket, false)
    })
  })
  return { open: () => sockets.size, evicted: () => evicted }
}

/** Listens and resolves with the bound address; a listen error (EADDRINUSE...) rejects. */
export function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server.address() as AddressInfo)
    })
  })
}

/** `http://host:port` of a bound address ('' before listening); IPv6 in brackets. */
export function httpUrl(a: AddressInfo | undefined): string {
  if (!a) return ''
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
  return `http://${host}:${a.port}`
}
