/**
 * TypeScript face of the optional `tapio_netlink` addon: loading it (with a reason when it is
 * missing), typed errors, and a route socket whose batches arrive decoded.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { constants as osConstants } from 'node:os'
import { defaultAddonFile, rebuildHint } from './addon-path.js'
import { type DecodedBatch, decodeBatch } from './netlink-codec.js'

export * from './netlink-codec.js'

interface NativeHandle {
  send(buf: Buffer): number
  close(): void
  readonly portId: number
}
interface NativeAddon {
  open(groups: number[], rcvbufBytes: number, onBatch: (batch: Buffer) => void): NativeHandle
}

/** The addon could not be loaded; `reason` says why and how to fix it. */
export class NetlinkUnavailableError extends Error {
  override readonly name = 'NetlinkUnavailableError'
  readonly _tag = 'NetlinkUnavailableError'
  constructor(readonly reason: string) {
    super(reason)
  }
}

/** A socket call failed with an errno. */
export class NetlinkSocketError extends Error {
  override readonly name = 'NetlinkSocketError'
  readonly _tag = 'NetlinkSocketError'
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(`${syscall} failed: ${code} (errno ${errno})`)
  }
}

export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name
  return `E${errno}`
}

/** `native/build/Release/tapio_netlink.node` of this package (from src/ and dist/src/ alike). */
export function defaultNetlinkAddonPaths(): string[] {
  return [defaultAddonFile('tapio_netlink')]
}

function isNativeAddon(value: unknown): value is NativeAddon {
  return typeof value === 'object' && value !== null && typeof (value as { open?: unknown }).open === 'function'
}

const loaded = new Map<string, NativeAddon>()

/** Load the addon from `path` or the default build locations. Throws NetlinkUnavailableError. */
export function loadNetlinkAddon(path?: string): NativeAddon {
  const candidates = path !== undefined ? [path] : defaultNetlinkAddonPaths()
  const found = candidates.find((p) => existsSync(p))
  if (found === undefined) {
    throw new NetlinkUnavailableError(`native addon tapio_netlink.node not found (looked in ${candidates.join(', ')}); ${rebuildHint('tapio_netlink')}`)
  }
  const cached = loaded.get(found)
  if (cached) return cached
  let mod: unknown
  try {
    mod = createRequire(import.meta.url)(found)
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    throw new NetlinkUnavailableError(`native addon ${found} failed to load (${msg}); ${rebuildHint('tapio_netlink')}`)
  }
  if (!isNativeAddon(mod)) throw new NetlinkUnavailableError(`native addon ${found} has no open() function; ${rebuildHint('tapio_netlink')}`)
  loaded.set(found, mod)
  return mod
}

function toSocketError(e: unknown, fallbackSyscall: string): NetlinkSocketError | unknown {
  if (e instanceof Error) {
    const errno = (e as { errno?: unknown }).errno
    const syscall = (e as { syscall?: unknown }).syscall
    if (typeof errno === 'number') return new NetlinkSocketError(typeof syscall === 'string' ? syscall : fallbackSyscall, errno, errnoName(errno))
  }
  return e
}

/** A human reason for a failure to open a route socket, with the fix. */
export function explainOpenFailure(e: unknown): string {
  if (e instanceof NetlinkSocketError) {
    if (e.code === 'EPERM' || e.code === 'EACCES') {
      return `cannot open a NETLINK_ROUTE socket (${e.code}): a seccomp, AppArmor or SELinux profile blocks AF_NETLINK; allow netlink sockets for this process`
    }
    if (e.code === 'EAFNOSUPPORT' || e.code === 'EPROTONOSUPPORT') return `the kernel has no NETLINK_ROUTE support (${e.code})`
    return `cannot open a NETLINK_ROUTE socket: ${e.message}`
  }
  return `cannot open a NETLINK_ROUTE socket: ${e instanceof Error ? e.message : String(e)}`
}

export interface RouteSocketOptions {
  readonly groups: readonly number[]
  readonly rcvbufBytes?: number
}

/** An open NETLINK_ROUTE socket; `onBatch` gets every decoded batch on the JS thread. */
export class RouteSocket {
  private closed = false
  private constructor(private readonly handle: NativeHandle) {}

  static open(addon: NativeAddon, options: RouteSocketOptions, onBatch: (batch: DecodedBatch) => void): RouteSocket {
    let socket: RouteSocket | undefined
    const handler = (buf: Buffer): void => {
      // Batches queued before close() are still delivered by Node; nobody wants them.
      if (socket === undefined || socket.closed) return
      onBatch(decodeBatch(buf))
    }
    try {
      socket = new RouteSocket(addon.open([...options.groups], options.rcvbufBytes ?? 4 << 20, handler))
    } catch (e) {
      throw toSocketError(e, 'socket')
    }
    return socket
  }

  get portId(): number {
    return this.handle.portId
  }

  send(request: Buffer): void {
    if (this.closed) throw new NetlinkSocketError('sendto', osConstants.errno.EBADF, 'EBADF')
    try {
      this.handle.send(request)
    } catch (e) {
      throw toSocketError(e, 'sendto')
    }
  }

  /** Joins the reader thread and closes the socket; safe twice. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.handle.close()
  }
}
