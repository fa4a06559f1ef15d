import { randomBytes } from 'node:crypto'

/**
 * Event ids: a per-process random prefix plus a monotonic counter in base 36.
 * One crypto call per process, none per event: unique across processes and restarts
 * with overwhelming probability, ordered within a process, and cheap at millions per second.
 */
const prefix = randomBytes(6).toString('hex')
let counter = 0

export function nextEventId(): string {
  counter += 1
  return `${prefix}-${counter.toString(36)}`
}

/** The random prefix of this process, for tests and diagnostics. */
export function eventIdPrefix(): string {
  return prefix
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
