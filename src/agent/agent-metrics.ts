import { Counter, Gauge, type Registry } from 'prom-client'
import type { ReloadStatus } from './agent.js'
import { buildInfo } from './version.js'

/** What the agent itself (not its collectors) exports: build, reloads, outputs' bytes and errors. */
export interface AgentSelfSources {
  readonly reload?: () => ReloadStatus
  readonly outputs: () => readonly { readonly name: string; readonly bytes?: number; readonly errors?: number }[]
}

export function registerAgentMetrics(registry: Registry, src: AgentSelfSources): void {
  const info = buildInfo()
  const build = new Gauge({
    name: 'tapio_build_info',
    help: 'Always 1; the labels say which build of the agent runs',
    labelNames: ['version', 'nodejs_version'],
    registers: [registry],
  })
  build.set({ version: info.version, nodejs_version: info.node }, 1)

  const reloadState = src.reload
  if (reloadState) {
    const ok: Gauge<string> = new Gauge({
      name: 'tapio_config_last_reload_successful',
      help: 'Whether the last configuration reload (SIGHUP) succeeded (1; also before any reload) or failed (0)',
      registers: [registry],
      collect() {
        ok.set(reloadState().lastSuccess ? 1 : 0)
      },
    })
    const at: Gauge<string> = new Gauge({
      name: 'tapio_config_last_reload_success_timestamp_seconds',
      help: 'When the configuration was last loaded successfully (start or reload), seconds since the epoch',
      registers: [registry],
      collect() {
        at.set(reloadState().lastSuccessAt / 1000)
      },
    })
  }

  const last = new Map<string, number>()
  const advance = (c: Counter<string>, key: string, labels: Record<string, string>, value: number) => {
    const prev = last.get(key)
    if (prev === undefined) c.inc(labels, value)
    else if (value > prev) c.inc(labels, value - prev)
    last.set(key, value)
  }
  if (reloadState) {
    const reloads: Counter<string> = new Counter({
      name: 'tapio_config_reloads_total',
      help: 'Configuration reloads (SIGHUP) since start, by result (success | failure)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        const s = reloadState()
        advance(reloads, 'r:success', { result: 'success' }, s.successes)
        advance(reloads, 'r:failure', { result: 'failure' }, s.attempts - s.successes)
      },
    })
  }
  const bytes: Counter<string> = new Counter({
    name: 'tapio_output_bytes_total',
    help: 'Bytes each output wrote (NDJSON, newline included)',
    labelNames: ['output'],
    registers: [registry],
    collect() {
      for (const o of src.outputs()) if (o.bytes !== undefined) advance(bytes, `b:${o.name}`, { output: o.name }, o.bytes)
    },
  })
  const errors: Counter<string> = new Counter({
    name: 'tapio_output_errors_total',
    help: 'Write errors of each output',
    labelNames: ['output'],
    registers: [registry],
    collect() {
      for (const o of src.outputs()) if (o.errors !== undefined) advance(errors, `e:${o.name}`, { output: o.name }, o.errors)
    },
  })
}
