import { randomBytes } from 'node:crypto'

/**
 * Event ids: a per-process random prefix plus a monotonic counter in base 36.
 * One crypto call per process, none per event: unique across processes and restarts
 * with overwhelming probability, ordered within a process, and cheap at millions per second.
 */
const prefix = randomBytes(6).toString('hex')
/** Joined once: an id is then one concatenation, not two. */
const head = `${prefix}-`
let counter = 0

export function nextEventId(): string {
  counter += 1
  return head + counter.toString(36)
}

/** The random prefix of this process, for tests and diagnostics. */
export function eventIdPrefix(): string {
  return prefix
}
