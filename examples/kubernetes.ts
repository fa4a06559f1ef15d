/**
 * Watch a cluster and print its events as NDJSON.
 *
 *   node dist/examples/kubernetes.js [--kubeconfig PATH] [--context NAME] [--events N] [--seconds T]
 *
 * Environment: KUBECONFIG (default loading rules), KUBE_CONTEXT, K8S_EVENTS, K8S_SECONDS.
 * Stops after N events or T seconds, whichever comes first (default: 20 events, 30 seconds);
 * prints the collector's health to stderr at the end.
 */
import { pathToFileURL } from 'node:url'
import { KubernetesCollector } from 'tapio-collector-manager/kubernetes'
import { stampEvent, type EventInput } from 'tapio-collector-manager'

export interface ExampleArgs {
  readonly kubeconfig?: string
  readonly context?: string
  readonly events: number
  readonly seconds: number
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ExampleArgs {
  const flag = (name: string) => {
    const i = argv.indexOf(`--${name}`)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const positive = (raw: string | undefined, fallback: number, what: string) => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got "${raw}"`)
    return n
  }
  const kubeconfig = flag('kubeconfig')
  const context = flag('context') ?? env.KUBE_CONTEXT
  return {
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(context ? { context } : {}),
    events: positive(flag('events') ?? env.K8S_EVENTS, 20, '--events'),
    seconds: positive(flag('seconds') ?? env.K8S_SECONDS, 30, '--seconds'),
  }
}

/** Runs the example; resolves with the number of events printed. */
export async function main(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
  write: (line: string) => void = (line) => process.stdout.write(line),
  log: (line: string) => void = (line) => process.stderr.write(line),
): Promise<number> {
  const args = parseArgs(argv, env)
  const collector = new KubernetesCollector({
    ...(args.kubeconfig ? { kubeconfig: args.kubeconfig } : {}),
    ...(args.context ? { context: args.context } : {}),
  })
  await collector.start(AbortSignal.timeout(10_000))
  // When time is up, stop(): the events() loop below then ends by itself.
  const timer = setTimeout(() => void collector.stop(), args.seconds * 1000)
  let printed = 0
  try {
    for await (const item of collector.events()) {
      const batch: readonly EventInput[] = Array.isArray(item) ? item : [item as EventInput]
      for (const e of batch) {
        write(`${JSON.stringify(stampEvent({ ...e }, 'kubernetes'))}\n`)
        printed += 1
        if (printed >= args.events) break
      }
      if (printed >= args.events) break
    }
  } finally {
    clearTimeout(timer)
    log(`${JSON.stringify({ health: collector.health(), statistics: collector.statistics() })}\n`)
    await collector.stop()
  }
  return printed
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`kubernetes example: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
