/**
 * A program as a user of the installed package writes it: every entry point by name, under
 * `strict`. test/package/installed.test.ts copies it into a fresh project, type-checks it against
 * the installed tarball and runs it as root.
 *
 *   node main.js <program-name> <veth-name>
 *
 * Prints `READY` once the collectors run, then waits for the exec of <program-name> (eBPF) and
 * for <veth-name> to appear (CNI), and prints one JSON line with what it saw.
 */
import { CollectorManager, type TapioEvent, validateEvent } from 'tapio-collector-manager'
import { CniCollector, detectCni, type LinkData } from 'tapio-collector-manager/cni'
import { detectEbpf, EbpfCollector, type ProcessExecData } from 'tapio-collector-manager/ebpf'
import { detectKubernetes, KubernetesCollector } from 'tapio-collector-manager/kubernetes'
import { collectorLifecycleMachine, supervisorMachine } from 'tapio-collector-manager/machines'
import { consumeEvents, NatsOutput, parseNatsOutputConfig } from 'tapio-collector-manager/nats'
import { serveInspector } from 'tapio-collector-manager/inspector'
import { detectSystemd, SystemdCollector } from 'tapio-collector-manager/systemd'
import { conformanceCases } from 'tapio-collector-manager/testing'

const [programName, vethName] = process.argv.slice(2)
if (!programName || !vethName) throw new Error('usage: main.js <program-name> <veth-name>')

// Every entry point is usable by name, types included (nothing here talks to NATS or a cluster).
const surface = {
  machines: [collectorLifecycleMachine.id, supervisorMachine.id],
  kubernetes: typeof KubernetesCollector === 'function' && (await detectKubernetes({ env: {}, home: '/nonexistent' })).supported === false,
  systemd: typeof SystemdCollector === 'function' && typeof detectSystemd === 'function',
  nats: typeof NatsOutput === 'function' && typeof consumeEvents === 'function' && parseNatsOutputConfig({ servers: ['nats://127.0.0.1:4222'] }).servers.length === 1,
  testing: conformanceCases({ name: 'ebpf', factory: () => new EbpfCollector() }).length > 0,
}

const ebpf = await detectEbpf()
const cni = await detectCni()
if (!ebpf.supported || !cni.supported) throw new Error(`not supported here: ebpf (${ebpf.reason}), cni (${cni.reason})`)

const mgr = new CollectorManager()
mgr.addCollector('ebpf', () => new EbpfCollector({ programs: { tcp: false, oom: false } }))
mgr.addCollector('cni', () => new CniCollector())
await mgr.start()
const inspector = await serveInspector(mgr)
const page = await fetch(`${inspector.url}/inspect`)

let exec: ProcessExecData | undefined
let link: LinkData | undefined
let invalid = 0
process.stdout.write('READY\n')
const deadline = setTimeout(() => void mgr.stop(), 60_000)
for await (const event of mgr.events()) {
  if (validateEvent(event)._tag === 'Failure') invalid += 1
  if (event.type === 'kernel.process.exec' && (event as TapioEvent<'kernel.process.exec'>).data.comm === programName) exec = (event as TapioEvent<'kernel.process.exec'>).data
  if (event.type === 'network.link.added' && (event as TapioEvent<'network.link.added'>).data.name === vethName) link = (event as TapioEvent<'network.link.added'>).data
  if (exec && link) break
}
clearTimeout(deadline)
await inspector.close()
await mgr.stop()
process.stdout.write(`${JSON.stringify({ exec, link, invalid, ebpfReason: ebpf.reason, inspectorPage: page.status, surface })}\n`)
