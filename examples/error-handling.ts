/**
 * Error-handling patterns, each on its own manager:
 *
 * 1. start failure: `start()` rejects with a CollectorStartError naming the collector and why;
 *    the others keep running, so the program can go on degraded.
 * 2. crash and restart: a collector whose source throws is restarted by its `permanent` policy
 *    after a backoff; the supervisor's lifecycle events say so (`mgr.on('lifecycle')`).
 * 3. finite source: a source that ends is an exit. `transient` does not restart a normal end;
 *    `permanent` (the default) would start it again and again.
 * 4. give-up: past `maxRestarts` within `withinMs`, the collector is given up on
 *    (`permanent_error`) while the rest run on; `restartCollector` brings it back by hand.
 *
 *   node dist/examples/error-handling.js
 *
 * One JSON line per pattern on stdout, with what was observed.
 */
import { CollectorManager, CollectorStartError, type LifecycleEvent, SyntheticCollector } from 'tapio-collector-manager'

const fast = { backoff: { initialMs: 50, maxMs: 200, jitter: 0 } }

function report(pattern: string, observed: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ pattern, ...observed })}\n`)
}

/** Reads and discards everything, so `block` never holds the collectors back. */
function drain(mgr: CollectorManager): Promise<number> {
  return (async () => {
    let n = 0
    for await (const batch of mgr.batches()) n += batch.length
    return n
  })()
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

// 1. A start failure.
{
  const mgr = new CollectorManager()
  mgr.addCollector('healthy', () => new SyntheticCollector({ rate: 100 }))
  mgr.addCollector('misconfigured', () => new SyntheticCollector({ failAtStart: true }), { maxRestarts: 0 })
  const consumed = drain(mgr)
  let failures: Record<string, string> = {}
  try {
    await mgr.start()
  } catch (e) {
    if (!(e instanceof CollectorStartError)) throw e
    failures = { ...e.failures }
  }
  const health = mgr.health()
  await mgr.stop()
  report('start-failure', {
    failed: Object.keys(failures),
    reason: failures.misconfigured,
    healthy: health.collectors.healthy?.state,
    misconfigured: health.collectors.misconfigured?.status,
    delivered: await consumed,
  })
}

// 2. Crash and restart under `permanent`.
{
  const mgr = new CollectorManager()
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => void lifecycle.push(e))
  // A fresh instance per start that throws after 50 events: the source fails every time.
  mgr.addCollector('flaky', () => new SyntheticCollector({ rate: 1000, batchSize: 10, failAfter: 50 }), { restart: 'permanent', maxRestarts: 10, withinMs: 60_000, ...fast })
  const consumed = drain(mgr)
  await mgr.start()
  await until('two recoveries', () => lifecycle.filter((e) => e.type === 'recovered').length >= 2)
  await mgr.stop()
  const scheduled = lifecycle.filter((e) => e.type === 'restart-scheduled')
  report('crash-restart', {
    failures: lifecycle.filter((e) => e.type === 'failed' && e.exit === 'failure').length,
    restartDelaysMs: scheduled.map((e) => (e.type === 'restart-scheduled' ? e.delayMs : 0)),
    recovered: lifecycle.filter((e) => e.type === 'recovered').length,
    delivered: await consumed,
  })
}

// 3. A finite source: `transient` lets it end.
{
  const mgr = new CollectorManager()
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => void lifecycle.push(e))
  mgr.addCollector('inventory', () => new SyntheticCollector({ rate: 0, batchSize: 100, total: 300 }), { restart: 'transient' })
  const consumed = drain(mgr)
  await mgr.start()
  await until('the source to end', () => lifecycle.some((e) => e.type === 'failed' && e.exit === 'normal'))
  // Give a restart the chance it must not take.
  await new Promise((r) => setTimeout(r, 300))
  const state = mgr.health().collectors.inventory?.state
  await mgr.stop()
  report('finite-source', {
    normalExits: lifecycle.filter((e) => e.type === 'failed' && e.exit === 'normal').length,
    restarts: lifecycle.filter((e) => e.type === 'restart-scheduled').length,
    state,
    delivered: await consumed,
  })
}

// 4. Give-up, then a manual restart.
{
  const mgr = new CollectorManager()
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => void lifecycle.push(e))
  mgr.addCollector('steady', () => new SyntheticCollector({ rate: 100 }))
  // Fails at its first 3 starts (counted across the instances of this registration), then behaves.
  let starts = 0
  mgr.addCollector(
    'broken',
    () => {
      starts += 1
      return new SyntheticCollector({ rate: 100, failAtStart: starts <= 3 })
    },
    { maxRestarts: 2, withinMs: 60_000, ...fast },
  )
  const consumed = drain(mgr)
  await mgr.start().catch((e: unknown) => {
    if (!(e instanceof CollectorStartError)) throw e
  })
  await until('the give-up', () => lifecycle.some((e) => e.type === 'gave-up'))
  const afterGiveUp = mgr.health()
  await mgr.restartCollector('broken')
  const afterManual = mgr.health()
  await mgr.stop()
  report('give-up', {
    starts,
    gaveUp: afterGiveUp.collectors.broken?.status,
    steadyMeanwhile: afterGiveUp.collectors.steady?.status,
    aggregate: afterGiveUp.status,
    afterManualRestart: afterManual.collectors.broken?.status,
    delivered: await consumed,
  })
}
