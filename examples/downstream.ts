/**
 * A downstream processing layer on the merged stream, written with your own Effect (a peer
 * dependency, so `mgr.stream` is a `Stream` of the same Effect you import):
 *
 * - windows of at most 1000 events or 200 ms, each summarised as counts per source and type;
 * - every event of severity warning or worse forwarded to an alert sink;
 * - a finite run: `Stream.take` ends the pipeline after N events, then the manager stops.
 *
 *   node dist/examples/downstream.js [--events N]
 *
 * Window summaries go to stdout as NDJSON; the totals and the manager's statistics() to stderr
 * as the last line. Three sources: two SyntheticCollectors and an Effect-native heartbeat.
 */
import { parseArgs } from 'node:util'
import { Effect, Schedule, Stream } from 'effect'
import { CollectorManager, effectCollector, type EventInput, SEVERITIES, SyntheticCollector, type TapioEvent } from 'tapio-collector-manager'

const { values } = parseArgs({ options: { events: { type: 'string', default: '5000' } } })
const wanted = Number(values.events)
if (!Number.isInteger(wanted) || wanted <= 0) throw new Error(`--events: expected a positive integer, got ${values.events}`)

const mgr = new CollectorManager()
mgr.addCollector('web', () => new SyntheticCollector({ rate: 4000, batchSize: 40, type: 'http.request' }))
mgr.addCollector('db', () => new SyntheticCollector({ rate: 1000, batchSize: 10, type: 'db.query', severity: 'debug' }))
// An Effect-native source: a beat every 10 ms, every fifth one a warning.
const heartbeat = Stream.fromSchedule(Schedule.spaced('10 millis')).pipe(
  Stream.map((n): EventInput => ({ type: 'app.heartbeat', severity: n % 5 === 4 ? 'warning' : 'info', data: { n } })),
)
mgr.addCollector('heartbeat', () => effectCollector({ events: heartbeat }))
await mgr.start()

interface WindowSummary {
  readonly events: number
  readonly bySourceAndType: Record<string, number>
  readonly alerts: number
}

const atLeastWarning = new Set<string>(SEVERITIES.slice(SEVERITIES.indexOf('warning')))
const alerts: TapioEvent[] = []

function summarize(window: readonly TapioEvent[]): WindowSummary {
  const bySourceAndType: Record<string, number> = {}
  let windowAlerts = 0
  for (const e of window) {
    const key = `${e.source}/${e.type}`
    bySourceAndType[key] = (bySourceAndType[key] ?? 0) + 1
    if (atLeastWarning.has(e.severity)) {
      alerts.push(e)
      windowAlerts += 1
    }
  }
  return { events: window.length, bySourceAndType, alerts: windowAlerts }
}

const totals = await Effect.runPromise(
  mgr.stream.pipe(
    Stream.take(wanted),
    Stream.groupedWithin(1000, '200 millis'),
    Stream.map(summarize),
    Stream.tap((w) => Effect.sync(() => process.stdout.write(`${JSON.stringify(w)}\n`))),
    Stream.runFold(
      () => ({ events: 0, windows: 0, bySource: {} as Record<string, number> }),
      (acc, w) => {
        for (const [key, n] of Object.entries(w.bySourceAndType)) {
          const source = key.slice(0, key.indexOf('/'))
          acc.bySource[source] = (acc.bySource[source] ?? 0) + n
        }
        return { ...acc, events: acc.events + w.events, windows: acc.windows + 1 }
      },
    ),
  ),
)
await mgr.stop()
process.stderr.write(`${JSON.stringify({ ...totals, alerts: alerts.length, statistics: mgr.statistics() })}\n`)
