// deploy/kubernetes/ as a cluster receives it: rendered by the real tool (`kubectl kustomize`, the
// kustomize built into kubectl), alone and with the optional metrics component, then checked against
// what the image and the agent need: mounts, capabilities, environment, probes and ports.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/agent/config.js'
import { builtinKinds, validators } from '../../src/agent/registry.js'
import { ROOT } from '../agent/support.js'
import { agentConfigOf, daemonSetOf, DEPLOY_DIR, type K8sObject, parseObjects } from './daemonset.js'

const kustomize = (dir: string): K8sObject[] =>
  parseObjects(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' }), `kubectl kustomize ${dir}`)

// An overlay the way a user adds the component (kustomize refuses absolute roots: relative paths).
const overlay = mkdtempSync(join(tmpdir(), 'tapio-kustomize-'))
afterAll(() => rmSync(overlay, { recursive: true, force: true }))
const base = relative(overlay, DEPLOY_DIR)
writeFileSync(
  join(overlay, 'kustomization.yaml'),
  `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [${base}]
components: [${join(base, 'components/metrics')}]
`,
)

const rendered = kustomize(DEPLOY_DIR)
const withMetrics = kustomize(overlay)
const spec = daemonSetOf(rendered)
const agent = spec.containers[0]
if (!agent) throw new Error('the DaemonSet has no container')
const ENV = { NODE_NAME: 'node-1', POD_NAME: 'tapio-agent-x7k2p', POD_NAMESPACE: 'tapio-system', POD_IP: '10.0.0.5' }
const config = loadConfigText(agentConfigOf(rendered), 'rendered ConfigMap', validators(builtinKinds()), ENV)
const kinds = (objs: K8sObject[]) => objs.map((o) => o.kind).sort()

describe('kubectl kustomize deploy/kubernetes', () => {
  it('renders the base, and the metrics component adds exactly a Service and a PodMonitor', () => {
    expect(kinds(rendered)).toEqual(['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount'])
    expect(kinds(withMetrics)).toEqual([...kinds(rendered), 'PodMonitor', 'Service'].sort())
    for (const o of withMetrics) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) expect(o.metadata.namespace, o.kind).toBe('tapio-system')
  })

  it('gives the container what the agent needs to run its collectors, and nothing privileged', () => {
    const sc = agent.securityContext
    expect(sc.privileged).toBe(false)
    expect(sc.runAsUser).toBe(0) // capabilities without file capabilities are effective for uid 0 only
    expect(sc.capabilities.drop).toEqual(['ALL'])
    // ebpf: CAP_BPF + CAP_PERFMON (src/collectors/ebpf/detect.ts hasBpfCapabilities); no SYS_ADMIN,
    // so tracefs must come from the host and the collector must not try to mount it.
    expect(sc.capabilities.add).toEqual(expect.arrayContaining(['BPF', 'PERFMON']))
    expect(sc.capabilities.add).not.toContain('SYS_ADMIN')
    expect(config.collectors.find((c) => c.kind === 'ebpf')?.config).toMatchObject({ mountTracefs: false })
    expect(spec.hostPID).toBe(true)
    expect(spec.hostNetwork).toBe(true)

    // Every host path a collector reads is mounted from the host at the same place.
    const cni = config.collectors.find((c) => c.kind === 'cni')?.config as { cniConfig: { dir: string }; cniResults: { dir: string }; netns: { dir: string } }
    const systemd = config.collectors.find((c) => c.kind === 'systemd')?.config as { address: string }
    const socket = /^unix:path=(.+)$/.exec(systemd.address)?.[1] ?? ''
    const needed = ['/sys/kernel/btf', '/sys/kernel/tracing', '/sys/fs/cgroup', cni.cniConfig.dir, cni.cniResults.dir, cni.netns.dir]
    const hostMount = (path: string) =>
      agent.volumeMounts.find((m) => {
        const v = spec.volumes.find((x) => x.name === m.name)
        return v?.hostPath?.path === m.mountPath && (path === m.mountPath || path.startsWith(`${m.mountPath}/`))
      })
    for (const path of [...needed, socket]) expect(hostMount(path), `${path} from the host`).toBeDefined()
    // Every mount has its volume.
    for (const m of agent.volumeMounts) expect(spec.volumes.some((v) => v.name === m.name), m.name).toBe(true)
  })

  it('passes a config the agent loads, from the mount its --config names, with every ${VAR} it uses in env', () => {
    const at = agent.args.indexOf('--config')
    const path = agent.args[at + 1] ?? ''
    expect(agent.args[0]).toBe('run')
    const mount = agent.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`))
    const volume = spec.volumes.find((v) => v.name === mount?.name)
    expect(volume?.configMap?.name).toBe('tapio-agent')
    expect(path.slice((mount?.mountPath.length ?? 0) + 1)).toBe('agent.yaml')
    const used = [...agentConfigOf(rendered).matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] as string)
    expect(used.length).toBeGreaterThan(0)
    const provided = new Map((agent.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]))
    for (const name of new Set(used)) expect(provided.has(name), `env ${name}`).toBe(true)
    expect(provided.get('NODE_NAME')).toBe('spec.nodeName')
    expect(provided.get('POD_IP')).toBe('status.podIP')
    expect(config.node).toBe('node-1')
  })

  it('probes the listener the config opens, with an entry point the image has', () => {
    for (const probe of [agent.readinessProbe, agent.livenessProbe]) {
      const cmd = probe.exec?.command ?? []
      expect(cmd[0]).toBe('node')
      // /app/dist/... in the image is dist/... here (Dockerfile: COPY --from=build /app/dist ./dist).
      expect(cmd[1]).toMatch(/^\/app\/dist\//)
      expect(existsSync(join(ROOT, (cmd[1] ?? '').slice('/app/'.length))), cmd[1]).toBe(true)
      expect(cmd[cmd.indexOf('--url') + 1]).toBe(`http://${config.http.host}:${config.http.port}`)
    }
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain('COPY --from=build /app/dist ./dist')
  })

  it('declares the scrape listener as the metrics port, which the Service and PodMonitor select', () => {
    expect(config.http.scrape).toEqual({ host: ENV.POD_IP, port: 8498 })
    const port = agent.ports?.find((p) => p.name === 'metrics')
    expect(port).toEqual({ name: 'metrics', containerPort: config.http.scrape?.port, protocol: 'TCP' })
    const ds = withMetrics.find((o) => o.kind === 'DaemonSet') as K8sObject & { spec: { template: { metadata: { labels: Record<string, string> } } } }
    const podLabels = ds.spec.template.metadata.labels
    const service = withMetrics.find((o) => o.kind === 'Service') as K8sObject & {
      spec: { clusterIP: string; selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] }
    }
    expect(Object.entries(service.spec.selector).every(([k, v]) => podLabels[k] === v)).toBe(true)
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 8498, targetPort: 'metrics', protocol: 'TCP' }])
    const monitor = withMetrics.find((o) => o.kind === 'PodMonitor') as K8sObject & {
      apiVersion: string
      spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] }
    }
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1')
    expect(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => podLabels[k] === v)).toBe(true)
    expect(monitor.spec.podMetricsEndpoints.map((e) => [e.port, e.path])).toEqual([['metrics', '/metrics']])
  })
})
