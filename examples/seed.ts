/**
 * The original design's usage, in TypeScript:
 *
 *   mgr := manager.NewCollectorManager()
 *   mgr.AddCollector("k8s", k8sCollector)
 *   mgr.Start(ctx); for event := range mgr.Events() { ... }; mgr.Statistics(); mgr.Stop()
 *
 * Two synthetic collectors stand in for real ones. Events go to stdout as NDJSON, statistics to
 * stderr at the end. Run: `node dist/examples/seed.js [--events N] [--seconds S]`.
 */
import { parseArgs } from 'node:util'
import { CollectorManager, SyntheticCollector, type TapioEvent } from 'tapio-collector-manager'

export interface SeedOptions {
  /** Stop after this many events (0 = no limit). */
  readonly events?: number
  /** Stop after this many seconds (0 = no limit; SIGINT/SIGTERM stop too). */
  readonly seconds?: number
  readonly write?: (line: string) => void
}

export async function main(options: SeedOptions = {}): Promise<{ delivered: number; statistics: ReturnType<CollectorManager['statistics']> }> {
  const write = options.write ?? ((line: string) => process.stdout.write(line))
  const mgr = new CollectorManager()
  mgr.addCollector('alpha', new SyntheticCollector({ rate: 200, batchSize: 20, type: 'synthetic.tick' }))
  mgr.addCollector('beta', new SyntheticCollector({ rate: 50, batchSize: 5, type: 'synthetic.tick', severity: 'debug' }))

  const abort = new AbortController()
  const onSignal = () => abort.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const timer = options.seconds ? setTimeout(onSignal, options.seconds * 1000) : undefined

  await mgr.start(abort.signal)
  let delivered = 0
  const limit = options.events ?? 0
  for await (const event of mgr.events()) {
    write(`${JSON.stringify(event satisfies TapioEvent)}\n`)
    delivered += 1
    if (limit > 0 && delivered >= limit) break
  }
  await mgr.stop()
  if (timer) clearTimeout(timer)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  return { delivered, statistics: mgr.statistics() }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (invokedDirectly) {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '0' }, seconds: { type: 'string', default: '0' } },
  })
  const result = await main({ events: Number(values.events), seconds: Number(values.seconds) })
  const s = result.statistics
  process.stderr.write(
    `${JSON.stringify({ delivered: result.delivered, totalEvents: s.totalEvents, activeCollectors: s.activeCollectors, dropped: s.droppedEvents })}\n`,
  )
}
