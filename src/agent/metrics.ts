import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { ReloadStatus } from './agent.js'
import { registerAgentMetrics } from './agent-metrics.js'
import { LIFECYCLE_STATES } from '../../machines/collector-lifecycle.js'
import { COMPONENT_STATUSES } from '../core/status.js'
import type { CollectorManager } from '../manager/collector-manager.js'
import type { EnrichmentCounts } from '../enrich/enricher.js'
import { registerNatsMetrics } from '../outputs/nats/metrics.js'
import type { NatsOutput } from '../outputs/nats/output.js'
import { DROP_REASONS } from '../stream/counters.js'
import type { ProcessorStageStatistics } from '../processors/chain.js'
import { registerElectionMetrics } from './election-metrics.js'

/**
 * Prometheus metrics read from the manager at scrape time. Counters advance by the difference
 * since the last scrape, so they stay monotonic even when a collector is removed and re-added.
 */
export interface AgentMetricsSources {
  readonly manager: () => CollectorManager
  readonly outputs: () => readonly { name: string; written: number; bytes?: number; errors?: number; dropped?: () => Readonly<Record<string, number>> }[]
  readonly tailDropped: () => number
  /** Absent, or returning undefined, when the agent has no enricher. */
  readonly enrichment?: () => EnrichmentCounts | undefined
  /** The last configuration reload's outcome. */
  readonly reload?: () => ReloadStatus
  /** The processor stage's flow. */
  readonly processors?: () => ProcessorStageStatistics
}

export function createMetrics(src: AgentMetricsSources): Registry {
  const registry = new Registry()
  // Standard names (process_*, nodejs_*): what stock Node.js dashboards and alerts expect.
  collectDefaultMetrics({ register: registry })
  registerAgentMetrics(registry, { outputs: src.outputs, ...(src.reload ? { reload: src.reload } : {}) })
  const last = new Map<string, number>()
  const advance = (c: Counter<string>, key: string, labels: Record<string, string>, value: number) => {
    const prev = last.get(key)
    // Export every known series, zeros included, so absence never reads as "no data".
    if (prev === undefined) c.inc(labels, value)
    else if (value > prev) c.inc(labels, value - prev)
    last.set(key, value)
  }

  /** A per-collector counter that follows one field of the manager's statistics. */
  const perCollector = (name: string, help: string, field: 'accepted' | 'delivered' | 'restarts' | 'manualRestarts') => {
    const counter: Counter<string> = new Counter({
      name,
      help,
      labelNames: ['collector'],
      registers: [registry],
      collect() {
        for (const [collector, c] of Object.entries(src.manager().statistics().collectors))
          advance(counter, `${name}:${collector}`, { collector }, c[field])
      },
    })
  }
  perCollector('tapio_events_accepted_total', 'Events received from collectors', 'accepted')
  perCollector('tapio_events_delivered_total', 'Events handed to consumers (outputs)', 'delivered')
  perCollector('tapio_collector_restarts_total', 'Restarts of the collector, automatic and manual (the count statistics() and health() show)', 'restarts')
  perCollector('tapio_collector_manual_restarts_total', 'Of tapio_collector_restarts_total, restarts an operator asked for', 'manualRestarts')
  const dropped: Counter<string> = new Counter({
    name: 'tapio_events_dropped_total',
    help: 'Events accepted but not delivered, by reason',
    labelNames: ['collector', 'reason'],
    registers: [registry],
    collect() {
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const reason of DROP_REASONS) advance(dropped, `x:${name}:${reason}`, { collector: name, reason }, c.dropped[reason])
      }
    },
  })
  const produced: Counter<string> = new Counter({
    name: 'tapio_collector_events_produced_total',
    help: "Events the collector's source produced, counted by the collector",
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        if (c.source) advance(produced, `p:${name}`, { collector: name }, c.source.produced)
      }
    },
  })
  const sourceDropped: Counter<string> = new Counter({
    name: 'tapio_collector_events_dropped_total',
    help: 'Events lost inside the collector before the merge buffer, by reason',
    labelNames: ['collector', 'reason'],
    registers: [registry],
    collect() {
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const [reason, n] of Object.entries(c.source?.dropped ?? {})) advance(sourceDropped, `sd:${name}:${reason}`, { collector: name, reason }, n)
      }
    },
  })
  const ownCounters: Counter<string> = new Counter({
    name: 'tapio_collector_counted_total',
    help: "A collector's own cumulative counters (relists, malformed records, reconnects...)",
    labelNames: ['collector', 'counter'],
    registers: [registry],
    collect() {
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const [counter, n] of Object.entries(c.source?.counters ?? {})) advance(ownCounters, `oc:${name}:${counter}`, { collector: name, counter }, n)
      }
    },
  })
  const ownGauges: Gauge<string> = new Gauge({
    name: 'tapio_collector_value',
    help: "A collector's own current values (pods cached, whether it leads the cluster-wide watches, ms since its lease renewal...)",
    labelNames: ['collector', 'gauge'],
    registers: [registry],
    collect() {
      ownGauges.reset()
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const [gauge, n] of Object.entries(c.source?.gauges ?? {})) ownGauges.set({ collector: name, gauge }, n)
      }
    },
  })
  registerElectionMetrics(registry, () => src.manager().health().collectors)
  const state: Gauge<string> = new Gauge({
    name: 'tapio_collector_state',
    help: 'Lifecycle state of each collector (1 for the current state)',
    labelNames: ['collector', 'state'],
    registers: [registry],
    collect() {
      state.reset()
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const s of LIFECYCLE_STATES) state.set({ collector: name, state: s }, s === c.state ? 1 : 0)
      }
    },
  })
  const status: Gauge<string> = new Gauge({
    name: 'tapio_collector_status',
    help: 'Health status of each collector (1 for the current status, OpenTelemetry status model)',
    labelNames: ['collector', 'status'],
    registers: [registry],
    collect() {
      status.reset()
      for (const [name, c] of Object.entries(src.manager().statistics().collectors)) {
        for (const s of COMPONENT_STATUSES) status.set({ collector: name, status: s }, s === c.status ? 1 : 0)
      }
    },
  })
  const bufferSize: Gauge<string> = new Gauge({
    name: 'tapio_buffer_size',
    help: 'Events in the merge buffer',
    registers: [registry],
    collect() {
      bufferSize.set(src.manager().statistics().buffer.size)
    },
  })
  const bufferCapacity: Gauge<string> = new Gauge({
    name: 'tapio_buffer_capacity',
    help: 'Capacity of the merge buffer (events)',
    registers: [registry],
    collect() {
      bufferCapacity.set(src.manager().statistics().buffer.capacity)
    },
  })
  const outputWritten: Counter<string> = new Counter({
    name: 'tapio_output_events_total',
    help: 'Events written by each output',
    labelNames: ['output'],
    registers: [registry],
    collect() {
      for (const o of src.outputs()) advance(outputWritten, `o:${o.name}`, { output: o.name }, o.written)
    },
  })
  const outputDropped: Counter<string> = new Counter({
    name: 'tapio_output_dropped_events_total',
    help: 'Events an output was handed and did not write, by reason (write_error: the sink failed; shutdown: not flushed in time at stop)',
    labelNames: ['output', 'reason'],
    registers: [registry],
    collect() {
      for (const o of src.outputs()) for (const [reason, n] of Object.entries(o.dropped?.() ?? {})) advance(outputDropped, `od:${o.name}:${reason}`, { output: o.name, reason }, n)
    },
  })
  const tailDropped: Counter<string> = new Counter({
    name: 'tapio_tail_dropped_total',
    help: 'Events a slow /events client lost (the main stream is never slowed)',
    registers: [registry],
    collect() {
      advance(tailDropped, 'tail', {}, src.tailDropped())
    },
  })
  const enrichment: Counter<string> = new Counter({
    name: 'tapio_enrichment_total',
    help: 'Kernel and network events looked up in the Kubernetes metadata, by result (hit|miss) and reason',
    labelNames: ['result', 'reason'],
    registers: [registry],
    collect() {
      const c = src.enrichment?.()
      if (!c) return
      for (const [reason, n] of Object.entries(c.hit)) advance(enrichment, `eh:${reason}`, { result: 'hit', reason }, n)
      for (const [reason, n] of Object.entries(c.miss)) advance(enrichment, `em:${reason}`, { result: 'miss', reason }, n)
    },
  })
  if (src.processors) {
    const stage = src.processors
    const received: Counter<string> = new Counter({
      name: 'tapio_processor_events_received_total',
      help: 'Events that entered the processor stage, by collector',
      labelNames: ['collector'],
      registers: [registry],
      collect() {
        for (const [collector, c] of Object.entries(stage().sources)) advance(received, `pr:${collector}`, { collector }, c.received)
      },
    })
    const delivered: Counter<string> = new Counter({
      name: 'tapio_processor_events_delivered_total',
      help: 'Events that left the processor stage for the outputs, by collector',
      labelNames: ['collector'],
      registers: [registry],
      collect() {
        for (const [collector, c] of Object.entries(stage().sources)) advance(delivered, `pd:${collector}`, { collector }, c.delivered)
      },
    })
    const removed: Counter<string> = new Counter({
      name: 'tapio_processor_events_dropped_total',
      help: 'Events a processor removed, by collector and processor name (received = delivered + dropped)',
      labelNames: ['collector', 'processor'],
      registers: [registry],
      collect() {
        for (const [collector, c] of Object.entries(stage().sources))
          for (const [processor, n] of Object.entries(c.dropped)) advance(removed, `px:${collector}:${processor}`, { collector, processor }, n)
      },
    })
    const emitted: Counter<string> = new Counter({
      name: 'tapio_processor_events_emitted_total',
      help: 'Events a processor added (the correlate processor: collector is its name), by collector (received + emitted = delivered + dropped)',
      labelNames: ['collector'],
      registers: [registry],
      collect() {
        for (const [collector, c] of Object.entries(stage().sources)) if (c.emitted > 0) advance(emitted, `pe:${collector}`, { collector }, c.emitted)
      },
    })
    // A processor's own counters start afresh when a reload replaces it, and some are levels
    // (keys tracked): a gauge says both honestly.
    const own: Gauge<string> = new Gauge({
      name: 'tapio_processor_state',
      help: "Each current processor's own counters (since it was built: a reload starts them afresh), e.g. correlate tracked, keys, evicted, incidents",
      labelNames: ['processor', 'type', 'counter'],
      registers: [registry],
      collect() {
        own.reset()
        for (const [processor, p] of Object.entries(stage().processors))
          for (const [counter, n] of Object.entries(p.counters)) own.set({ processor, type: p.type, counter }, n)
      },
    })
  }
  // By name, not instanceof: the NATS client is loaded only when a NATS output is configured.
  const isNats = (o: { name: string }): o is NatsOutput => o.name === 'nats' && 'statistics' in o
  if (src.outputs().some(isNats)) {
    registerNatsMetrics(registry, () => src.outputs().find(isNats)?.statistics())
  }
  return registry
}
