import type { TapioEvent } from '../../events/event.js'
import type { OomKillData } from '../../events/vocabulary/kernel.js'
import type { ContainerBackoffData, ContainerRestartedData, K8sObjectChangeData, OomKilledData } from '../../events/vocabulary/kubernetes.js'
import type { CniAttachmentData, LinkData, NetnsData } from '../../events/vocabulary/network.js'
import { type ChainMemberEvent, type ChainRule, correlationKey as key } from './engine.js'
import { systemdExitChain } from './systemd-exit.js'

/**
 * The built-in chains, by name (the `chains:` list of a correlate processor). A chain is added by
 * writing a {@link ChainRule} and listing it here: see docs/processors.md, "Adding a chain".
 */

function member(members: readonly ChainMemberEvent[], step: string): TapioEvent | undefined {
  return members.find((m) => m.step === step)?.event
}

/** A container's keys from an event's pod context: container id, and pod uid + container name. */
function containerKeys(e: TapioEvent, podUid = e.k8s?.podUid, container = e.k8s?.container): string[] {
  const keys: string[] = []
  if (e.k8s?.containerId) keys.push(key.container(e.k8s.containerId))
  if (podUid && container) keys.push(key.podContainer(podUid, container))
  return keys
}

function podName(e: TapioEvent | undefined): string | undefined {
  const k = e?.k8s
  return k?.pod ? `${k.namespace ? `${k.namespace}/` : ''}${k.pod}` : undefined
}

/**
 * Kernel OOM kill (eBPF, the container id from the cgroup path) → the Kubernetes OOMKilled of the
 * container with that id → its restart after an OOM (pod uid + container name) → CrashLoopBackOff.
 */
export const oomKillChain: ChainRule = {
  name: 'oom-kill',
  description: 'kernel OOM kill → container OOMKilled in its pod → container restart → CrashLoopBackOff',
  steps: [
    {
      name: 'kernel.oom.kill',
      types: ['kernel.oom.kill'],
      // Only a kill in a container's cgroup can be linked; a host process's OOM is left alone.
      keys: (e) => containerKeys(e),
    },
    {
      name: 'k8s.pod.oom_killed',
      types: ['k8s.pod.oom_killed'],
      keys: (e) => {
        const d = e.data as OomKilledData
        return containerKeys(e, d.uid, d.container)
      },
    },
    {
      name: 'k8s.pod.container_restarted',
      types: ['k8s.pod.container_restarted'],
      keys: (e) => {
        const d = e.data as ContainerRestartedData
        return d.lastTerminationReason === 'OOMKilled' ? [key.podContainer(d.uid, d.container)] : undefined
      },
    },
    {
      name: 'k8s.pod.crash_loop_backoff',
      types: ['k8s.pod.crash_loop_backoff'],
      keys: (e) => {
        const d = e.data as ContainerBackoffData
        return [key.podContainer(d.uid, d.container)]
      },
    },
  ],
  summary: (members) => {
    const kernel = member(members, 'kernel.oom.kill')
    const k8s = member(members, 'k8s.pod.oom_killed')
    const restart = member(members, 'k8s.pod.container_restarted')
    const loop = member(members, 'k8s.pod.crash_loop_backoff')
    const any = k8s ?? restart ?? loop ?? kernel
    const container = any?.k8s?.container ?? (k8s?.data as OomKilledData | undefined)?.container
    const pod = podName(k8s ?? restart ?? loop ?? kernel)
    const parts: string[] = []
    const who = container ? `container ${container}${pod ? ` of pod ${pod}` : ''}` : `container ${kernel?.k8s?.containerId?.slice(0, 12) ?? '?'}`
    if (kernel) {
      const d = kernel.data as OomKillData
      parts.push(`kernel OOM-killed ${d.victimComm} (pid ${d.victimPid}, ${Math.round(d.anonRssKb / 1024)} MiB anon) in ${who}`)
    } else parts.push(`${who} OOM-killed`)
    if (k8s) {
      const d = k8s.data as OomKilledData
      parts.push(`Kubernetes reports OOMKilled${d.exitCode !== undefined ? ` (exit ${d.exitCode})` : ''}`)
    }
    if (restart) parts.push(`restarted (restart ${(restart.data as ContainerRestartedData).restartCount})`)
    if (loop) parts.push('CrashLoopBackOff')
    return parts.join('; ')
  },
}

const isVeth = (d: LinkData) => d.kind === 'veth' && d.peerNetns !== undefined && d.snapshot !== true

/**
 * A veth whose peer is in a named network namespace → the CNI attachment whose sandbox is that
 * namespace (the libcni result cache: sandbox id, pod uid) → the pod with that uid. The namespace's
 * creation is linked too when it is seen. Dumps at start (`snapshot: true`) are history, not news:
 * they open nothing.
 */
export const vethSandboxChain: ChainRule = {
  name: 'veth-sandbox',
  description: 'network namespace created → veth into it → CNI attachment (sandbox) → the pod that owns it',
  steps: [
    {
      name: 'network.netns.created',
      types: ['network.netns.created'],
      keys: (e) => {
        const d = e.data as NetnsData
        return d.snapshot === true ? undefined : [key.netns(d.name)]
      },
    },
    {
      name: 'veth',
      types: ['network.link.added', 'network.link.changed'],
      keys: (e) => {
        const d = e.data as LinkData
        if (!isVeth(d)) return undefined
        // A change counts only when it is the move of the peer (later changes of the link are not the creation).
        if (e.type === 'network.link.changed' && !d.changes?.some((c) => c.field === 'peerNetnsId')) return undefined
        const keys = [key.netns(d.peerNetns as string)]
        if (e.k8s?.podUid) keys.push(key.pod(e.k8s.podUid))
        return keys
      },
    },
    {
      name: 'cni.attachment.added',
      types: ['cni.attachment.added'],
      keys: (e) => {
        const d = e.data as CniAttachmentData
        if (d.snapshot === true) return undefined
        const keys = new Set<string>()
        if (d.sandbox) keys.add(key.netns(d.sandbox))
        for (const i of d.interfaces) if (i.sandbox) keys.add(key.netns(i.sandbox))
        if (e.k8s?.podUid) keys.add(key.pod(e.k8s.podUid))
        return [...keys]
      },
    },
    {
      name: 'k8s.pod',
      types: ['k8s.pod.added', 'k8s.pod.updated'],
      // Pods change all the time: a pod event only completes a chain that a network event opened.
      opens: false,
      keys: (e) => [key.pod((e.data as K8sObjectChangeData).uid)],
    },
  ],
  ready: (steps) => steps.has('veth') && (steps.has('cni.attachment.added') || steps.has('k8s.pod')),
  summary: (members) => {
    const veth = member(members, 'veth')
    const cni = member(members, 'cni.attachment.added')
    const pod = member(members, 'k8s.pod')
    const link = veth?.data as LinkData | undefined
    const parts = [link ? `veth ${link.name} → netns ${link.peerNetns}` : 'veth']
    if (cni) parts.push(`sandbox ${(cni.data as CniAttachmentData).containerId.slice(0, 12)}`)
    const name = podName(pod) ?? podName(cni)
    if (name) parts.push(`pod ${name}`)
    return parts.join(' → ')
  },
}

/** Every built-in chain by name; a correlate processor uses all of them unless `chains:` narrows it. */
export const BUILTIN_CHAINS: Readonly<Record<string, ChainRule>> = {
  [oomKillChain.name]: oomKillChain,
  [vethSandboxChain.name]: vethSandboxChain,
  [systemdExitChain.name]: systemdExitChain,
}
