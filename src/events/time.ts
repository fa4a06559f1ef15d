/**
 * Nanosecond timestamps that survive JSON: a decimal string of nanoseconds since the Unix epoch.
 * A JS number cannot hold epoch nanoseconds exactly (they exceed 2^53), and bigint does not
 * serialize to JSON, so the string is the wire and storage form. Lexicographic order equals
 * numeric order for timestamps of the same digit count (true until the year 2286).
 */

const NS_PER_MS = 1_000_000n

// Anchor the monotonic clock to wall time once, so stamps are cheap, monotonic and epoch-based.
const anchorWallMs = Date.now()
const anchorHr = process.hrtime()
const anchorEpochSec = Math.floor(anchorWallMs / 1000)
const anchorSubSecNs = (anchorWallMs % 1000) * 1_000_000

/** Current time as epoch nanoseconds (decimal string). Monotonic within this process. */
export function nowNs(): string {
  const [ds, dns] = process.hrtime(anchorHr)
  let sec = anchorEpochSec + ds
  let ns = anchorSubSecNs + dns
  if (ns >= 1_000_000_000) {
    sec += 1
    ns -= 1_000_000_000
  }
  return `${sec}${ns.toString().padStart(9, '0')}`
}

/** Epoch nanoseconds from a kernel/monotonic source given as bigint. */
export function nsFromBigInt(ns: bigint): string {
  return ns.toString()
}

export function nsFromDate(date: Date): string {
  return (BigInt(date.getTime()) * NS_PER_MS).toString()
}

export function nsFromMillis(ms: number): string {
  return (BigInt(Math.trunc(ms)) * NS_PER_MS).toString()
}

export function nsToDate(ns: string): Date {
  return new Date(Number(BigInt(ns) / NS_PER_MS))
}

/** RFC 3339 with all nine fractional digits, for humans and logs. */
export function nsToIso(ns: string): string {
  const big = BigInt(ns)
  const ms = Number(big / NS_PER_MS)
  const frac = (big % 1_000_000_000n).toString().padStart(9, '0')
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`)
}

export function compareNs(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}
