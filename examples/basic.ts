/**
 * The original design's basic setup, with the four real collectors added by name:
 *
 *   mgr := manager.NewCollectorManager()
 *   mgr.AddCollector("k8s", k8s.NewCollector(cfg))
 *   mgr.AddCollector("systemd", systemd.NewCollector(cfg)) ...
 *   mgr.Start(ctx); for event := range mgr.Events() { ... }; mgr.Statistics(); mgr.Stop()
 *
 *   node dist/examples/basic.js [--kubeconfig PATH] [--context NAME] [--systemd-address ADDRESS]
 *                               [--seconds S] [--until-each N]
 *
 * Events go to stdout as NDJSON; which collectors run, and statistics() at the end, to stderr.
 * Stops after S seconds (default 10), or once every collector delivered N events (--until-each).
 * `ebpf` and `cni` need root; `k8s` a kubeconfig; `systemd` a bus (the system bus by default).
 */
import { parseArgs } from 'node:util'
import { CollectorManager, CollectorStartError } from 'tapio-collector-manager'
import { CniCollector } from 'tapio-collector-manager/cni'
import { EbpfCollector } from 'tapio-collector-manager/ebpf'
import { KubernetesCollector } from 'tapio-collector-manager/kubernetes'
import { SystemdCollector } from 'tapio-collector-manager/systemd'

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    context: { type: 'string' },
    'systemd-address': { type: 'string' },
    seconds: { type: 'string', default: '10' },
    'until-each': { type: 'string' },
  },
})
const seconds = Number(values.seconds)
const untilEach = values['until-each'] === undefined ? undefined : Number(values['until-each'])
if (!(seconds > 0)) throw new Error(`--seconds: expected a positive number, got ${values.seconds}`)
if (untilEach !== undefined && !(untilEach > 0)) throw new Error(`--until-each: expected a positive number, got ${values['until-each']}`)

const mgr = new CollectorManager()
mgr.addCollector('ebpf', new EbpfCollector())
const k8sConfig = { ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}), ...(values.context ? { context: values.context } : {}) }
mgr.addCollector('k8s', new KubernetesCollector(k8sConfig))
mgr.addCollector('systemd', new SystemdCollector(values['systemd-address'] ? { address: values['systemd-address'] } : {}))
mgr.addCollector('cni', new CniCollector())

try {
  await mgr.start()
} catch (e) {
  // Those that failed are named with the reason; the others run, so go on degraded.
  if (!(e instanceof CollectorStartError)) throw e
  for (const [name, why] of Object.entries(e.failures)) console.error(`${name}: not running (${why})`)
}
const running = Object.entries(mgr.health().collectors).filter(([, h]) => h.state === 'running')
console.error(`running: ${running.map(([name]) => name).join(', ')}`)

// Stopping ends events() once what was accepted has been delivered.
const timer = setTimeout(() => void mgr.stop(), seconds * 1000)
const perCollector = new Map<string, number>()
for await (const event of mgr.events()) {
  process.stdout.write(`${JSON.stringify(event)}\n`)
  perCollector.set(event.source, (perCollector.get(event.source) ?? 0) + 1)
  const done = untilEach !== undefined && running.every(([name]) => (perCollector.get(name) ?? 0) >= untilEach)
  if (done) break
}
clearTimeout(timer)
await mgr.stop()
console.error(JSON.stringify(mgr.statistics()))
