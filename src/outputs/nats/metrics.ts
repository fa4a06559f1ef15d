import { Counter, Gauge, type Registry } from 'prom-client'
import type { NatsOutputStatistics } from './output.js'
import { NATS_FAILURE_REASONS } from './reasons.js'

/**
 * `tapio_nats_*` series, read from the output's statistics at scrape time. The output's counters
 * only grow during its lifetime, so each scrape advances the Prometheus counters by the difference.
 */
export function registerNatsMetrics(registry: Registry, stats: () => NatsOutputStatistics | undefined): void {
  const last = new Map<string, number>()
  const advance = (c: Counter<string>, key: string, value: number, labels: Record<string, string> = {}) => {
    const prev = last.get(key)
    if (prev === undefined) c.inc(labels, value)
    else if (value > prev) c.inc(labels, value - prev)
    last.set(key, value)
  }
  const counter = (name: string, help: string, read: (s: NatsOutputStatistics) => number): void => {
    const c: Counter<string> = new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const s = stats()
        if (s) advance(c, name, read(s))
      },
    })
  }
  counter('tapio_nats_published_total', 'Events published to NATS (first send)', (s) => s.publishedEvents)
  counter('tapio_nats_acked_total', 'Events acknowledged by JetStream (stored)', (s) => s.ackedEvents)
  counter('tapio_nats_duplicates_total', 'Events acknowledged as duplicates (a resend the stream already had)', (s) => s.duplicateEvents)
  counter('tapio_nats_retries_total', 'Events sent again after a timeout, error reply or reconnect', (s) => s.retriedEvents)
  counter('tapio_nats_possibly_duplicated_total', "Events sent again after the stream's duplicate window had passed since their first send (the stream may hold them twice)", (s) => s.possiblyDuplicatedEvents)
  counter('tapio_nats_messages_published_total', 'NATS messages published (first send; several events each when packed)', (s) => s.publishedMessages)
  counter('tapio_nats_reconnects_total', 'Reconnections to the NATS servers', (s) => s.reconnects)
  counter('tapio_nats_connect_attempts_total', 'Connection attempts while not connected (first connect and reconnects)', (s) => s.connectAttempts)
  const failed: Counter<string> = new Counter({
    name: 'tapio_nats_failed_total',
    help: 'Events the NATS output gave up on, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const s = stats()
      if (!s) return
      for (const r of NATS_FAILURE_REASONS) advance(failed, `failed:${r}`, s.failedEvents[r], { reason: r })
    },
  })
  const gauge = (name: string, help: string, read: (s: NatsOutputStatistics) => number): void => {
    const g: Gauge<string> = new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const s = stats()
        if (s) g.set(read(s))
      },
    })
  }
  gauge('tapio_nats_connected', '1 while connected to a NATS server', (s) => (s.connected ? 1 : 0))
  gauge('tapio_nats_stream_ready', '1 once the stream is created or verified', (s) => (s.streamReady ? 1 : 0))
  gauge('tapio_nats_pending_events', 'Events published or waiting to be, not yet acknowledged', (s) => s.pendingEvents)
}
