/**
 * Serialised, coalescing reloads: a request while one runs schedules one more run after it (any
 * number of requests in the meantime make that one run), and each run reads the file when it
 * starts, so the last SIGHUP always ends with the file's latest content applied.
 */
export class Reloader {
  private running: Promise<void> | undefined
  private again = false

  constructor(private readonly run: () => Promise<void>) {}

  /** Resolves when the reload that covers this request has finished. */
  request(): Promise<void> {
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = this.loop()
    return this.running
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false
        await this.run().catch(() => {})
      } while (this.again)
    } finally {
      this.running = undefined
    }
  }
}
