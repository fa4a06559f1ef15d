/** Poll until `cond` holds; fail with `what` after `timeoutMs` (generous: the machine is shared). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Consume an async iterable in the background, keeping what it yields. */
export function collect<T>(it: AsyncIterable<T>): { items: T[]; done: Promise<void> } {
  const items: T[] = []
  const done = (async () => {
    for await (const x of it) items.push(x)
  })()
  return { items, done }
}
