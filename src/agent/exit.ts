import { writeSync } from 'node:fs'

/**
 * Exiting without cutting the last words short. `process.exit` drops whatever a piped stdout or
 * stderr has not taken yet (Node writes to pipes asynchronously): a long `check-config` report was
 * cut at the pipe's 64 KiB, a final `stopped` line could vanish.
 */

const pause = new Int32Array(new SharedArrayBuffer(4))

/** All of `text` to `fd`, now: waits out EAGAIN of a full non-blocking pipe; gives up on EPIPE. */
export function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text)
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}

/** Exit once stderr has taken what was written to it (bounded: a stalled reader gets `waitMs`). */
export function exitAfterStderr(code: number, waitMs = 2_000): void {
  setTimeout(() => process.exit(code), waitMs).unref()
  process.stderr.write('', () => process.exit(code))
}
