/**
 * Event ids: a per-process random prefix plus a monotonic counter in base 36.
 * One crypto call per process, none per event: unique across processes and restarts
 * with overwhelming probability, ordered within a process, and cheap at millions per second.
 *
 * The prefix is drawn on the first id, not at import: `node:crypto` costs ~4 ms to load, a tenth
 * of what the package adds to the root import, and an importer that never stamps an event never
 * needs it (`process.getBuiltinModule` loads it synchronously then).
 */
let prefix: string | undefined
/** `${prefix}-`, joined once: an id is then one concatenation, not two. */
let head: string | undefined
let counter = 0

function drawPrefix(): string {
  prefix = process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex')
  head = `${prefix}-`
  return prefix
}

export function nextEventId(): string {
  counter += 1
  if (head === undefined) drawPrefix()
  return (head as string) + counter.toString(36)
}

/** The random prefix of this process, for tests and diagnostics. */
export function eventIdPrefix(): string {
  return prefix ?? drawPrefix()
}

/**
 * Reserves `n` consecutive ids for a batch that writes them itself (the eBPF collector's encoded
 * batches): id `k` of the batch is `${eventIdPrefix()}-${(first + k).toString(36)}`.
 */
export function reserveEventIds(n: number): number {
  const first = counter + 1
  counter += n
  return first
}
