// The DaemonSet of deploy/kubernetes/ as the tests need it: parsed from the manifest (or from
// `kubectl kustomize` output) and turned into the `podman run` options that give a container the same
// privileges, namespaces and mounts on this host.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

export const DEPLOY_DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))

export interface VolumeMount {
  name: string
  mountPath: string
  readOnly?: boolean
  mountPropagation?: string
}
export interface Volume {
  name: string
  hostPath?: { path: string; type?: string }
  configMap?: { name: string }
  emptyDir?: { medium?: string; sizeLimit?: string }
  secret?: { secretName: string; optional?: boolean; defaultMode?: number }
}
export interface Probe {
  exec?: { command: string[] }
  httpGet?: { path: string; port: number | string }
}
export interface AgentContainer {
  name: string
  image: string
  args: string[]
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]
  ports?: { name?: string; containerPort: number; protocol?: string }[]
  securityContext: {
    privileged: boolean
    allowPrivilegeEscalation: boolean
    readOnlyRootFilesystem: boolean
    runAsUser: number
    capabilities: { drop: string[]; add: string[] }
    seccompProfile?: { type: string }
  }
  readinessProbe: Probe
  livenessProbe: Probe
  volumeMounts: VolumeMount[]
}
export interface DaemonSetSpec {
  hostPID?: boolean
  hostNetwork?: boolean
  serviceAccountName: string
  containers: AgentContainer[]
  volumes: Volume[]
}
export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
  [k: string]: unknown
}

export function parseObjects(text: string, where: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((d) => {
    if (d.errors.length) throw new Error(`${where}: ${d.errors.map((e) => e.message).join('; ')}`)
    const o = d.toJS() as K8sObject | null
    return o ? [o] : []
  })
}

export function daemonSetOf(objects: K8sObject[]): DaemonSetSpec {
  const ds = objects.filter((o) => o.kind === 'DaemonSet')
  if (ds.length !== 1) throw new Error(`expected one DaemonSet, found ${ds.length}`)
  return (ds[0] as unknown as { spec: { template: { spec: DaemonSetSpec } } }).spec.template.spec
}

export function agentConfigOf(objects: K8sObject[]): string {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'tapio-agent') as
    | (K8sObject & { data: Record<string, string> })
    | undefined
  const text = cm?.data['agent.yaml']
  if (!text) throw new Error('ConfigMap tapio-agent has no agent.yaml')
  return text
}

export function manifestObjects(file: string): K8sObject[] {
  return parseObjects(readFileSync(DEPLOY_DIR + file, 'utf8'), file)
}

/**
 * `podman run` options for the DaemonSet's agent container: its capabilities (drop ALL, add the
 * list), user, read-only root, no privilege escalation, host namespaces and hostPath mounts.
 * `configDir` stands in for the ConfigMap volume; emptyDirs become tmpfs.
 */
export function podmanOptions(spec: DaemonSetSpec, configDir: string, runtimeDefaultSeccomp?: string): string[] {
  const c = spec.containers[0]
  if (!c) throw new Error('the DaemonSet has no container')
  const sc = c.securityContext
  if (sc.privileged) throw new Error('the DaemonSet asks for a privileged container')
  const opts: string[] = ['--user', String(sc.runAsUser)]
  for (const cap of sc.capabilities.drop) opts.push('--cap-drop', cap)
  for (const cap of sc.capabilities.add) opts.push('--cap-add', cap)
  if (sc.readOnlyRootFilesystem) opts.push('--read-only')
  if (!sc.allowPrivilegeEscalation) opts.push('--security-opt', 'no-new-privileges')
  // RuntimeDefault: the runtime's default seccomp profile (podman's unless `runtimeDefaultSeccomp`
  // names another file standing in for a newer runtime's default).
  if (sc.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault') throw new Error(`seccomp ${sc.seccompProfile.type} not mapped`)
  if (runtimeDefaultSeccomp) opts.push('--security-opt', `seccomp=${runtimeDefaultSeccomp}`)
  if (spec.hostNetwork) opts.push('--network', 'host')
  if (spec.hostPID) opts.push('--pid', 'host')
  for (const m of c.volumeMounts) {
    const v = spec.volumes.find((x) => x.name === m.name)
    if (!v) throw new Error(`volumeMount ${m.name} has no volume`)
    const flags = [m.readOnly ? 'ro' : 'rw']
    if (m.mountPropagation === 'HostToContainer') flags.push('rslave')
    if (v.hostPath) opts.push('-v', `${v.hostPath.path}:${m.mountPath}:${flags.join(',')}`)
    else if (v.configMap) {
      opts.push('-v', `${configDir}:${m.mountPath}:ro`)
      // Mounts nested in the ConfigMap's (/etc/tapio/nats in /etc/tapio) need their mount point
      // there: the kubelet makes it, a read-only bind cannot get it later.
      for (const n of c.volumeMounts) if (n.mountPath.startsWith(`${m.mountPath}/`)) mkdirSync(join(configDir, n.mountPath.slice(m.mountPath.length + 1)), { recursive: true })
    }
    else if (v.emptyDir) opts.push('--tmpfs', `${m.mountPath}:rw,size=${v.emptyDir.sizeLimit === '16Mi' ? '16m' : '64m'}`)
    // An optional Secret that does not exist is mounted as an empty directory by the kubelet.
    else if (v.secret?.optional) opts.push('--tmpfs', `${m.mountPath}:ro,size=64k`)
    else throw new Error(`volume ${v.name}: kind not mapped`)
  }
  return opts
}

/** hostPath directories of type DirectoryOrCreate missing on this host: a kubelet creates them. */
export function missingHostDirs(spec: DaemonSetSpec): string[] {
  return spec.volumes.flatMap((v) => (v.hostPath?.type === 'DirectoryOrCreate' && !existsSync(v.hostPath.path) ? [v.hostPath.path] : []))
}

interface SeccompProfile {
  syscalls: { names: string[]; action: string; includes?: { caps?: string[] }; excludes?: { caps?: string[] } }[]
}

/**
 * This podman's default seccomp profile (containers-common) with \`bpf\` allowed to holders of
 * CAP_BPF and \`perf_event_open\` to holders of CAP_PERFMON, as newer runtime defaults do. Debian 12's
 * profile (containers-common 0.50) allows both only with CAP_SYS_ADMIN, so under it the ebpf
 * collector is skipped ("EPERM at load"): docs/deploy.md, seccomp.
 */
export function seccompWithBpfCaps(defaultProfile: string): string {
  const p = JSON.parse(defaultProfile) as SeccompProfile
  const gated = p.syscalls.filter((s) => s.names.includes('bpf') && s.includes?.caps?.includes('CAP_SYS_ADMIN'))
  if (gated.length === 0) throw new Error('the default seccomp profile has no CAP_SYS_ADMIN rule for bpf: check what it allows instead')
  // The rule refusing them to everyone else must exclude the new holders too (it would win).
  for (const r of p.syscalls) {
    if (r.action !== 'SCMP_ACT_ALLOW' && r.excludes?.caps?.includes('CAP_SYS_ADMIN')) r.names = r.names.filter((n) => n !== 'bpf' && n !== 'perf_event_open')
  }
  p.syscalls.push({ names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_BPF'] } })
  p.syscalls.push({ names: ['perf_event_open'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_PERFMON'] } })
  return JSON.stringify(p)
}
