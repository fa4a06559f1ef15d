/**
 * D-Bus address helpers without dbus-next, so detection can say "no system bus at ..." without
 * loading the D-Bus client (and its XML parser) on machines that have no bus.
 */

export function socketPathOf(address: string): string | undefined {
  for (const part of address.split(';')) {
    const m = /^unix:(.*)$/.exec(part)
    if (!m?.[1]) continue
    for (const kv of m[1].split(',')) {
      const [k, v] = kv.split('=')
      if (k === 'path' && v) return decodeURIComponent(v)
    }
  }
  return undefined
}

/** dbus-next cannot use abstract sockets without its native helper; only paths and TCP work. */
export function isAbstractAddress(address: string): boolean {
  return /(^|;)unix:([^;]*,)?abstract=/.test(address)
}
