import { access, constants } from 'node:fs/promises'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK)
    return true
  } catch {
    return false
  }
}

export interface DetectKubernetesOptions {
  readonly kubeconfig?: string
  readonly inCluster?: boolean
  /** For tests: where the environment and files are looked up. */
  readonly env?: NodeJS.ProcessEnv
  readonly home?: string
  readonly tokenPath?: string
}

/**
 * Whether there is a cluster to talk to: a kubeconfig (the configured path, KUBECONFIG or
 * ~/.kube/config) or in-cluster config (KUBERNETES_SERVICE_HOST plus the service-account token).
 * It does not contact the API server: an unreachable server is a health matter, not a skip.
 */
export async function detectKubernetes(options: DetectKubernetesOptions = {}): Promise<{ supported: boolean; reason: string }> {
  const env = options.env ?? process.env
  const tokenPath = options.tokenPath ?? SERVICE_ACCOUNT_TOKEN
  const inCluster = async () => Boolean(env.KUBERNETES_SERVICE_HOST) && (await readable(tokenPath))
  if (options.inCluster) {
    return (await inCluster())
      ? { supported: true, reason: `in-cluster config (KUBERNETES_SERVICE_HOST=${env.KUBERNETES_SERVICE_HOST})` }
      : { supported: false, reason: 'inCluster is set but KUBERNETES_SERVICE_HOST or the service-account token is missing' }
  }
  if (options.kubeconfig !== undefined) {
    return (await readable(options.kubeconfig))
      ? { supported: true, reason: `kubeconfig ${options.kubeconfig}` }
      : { supported: false, reason: `kubeconfig ${options.kubeconfig} is not readable` }
  }
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p.length > 0)
  for (const p of fromEnv) if (await readable(p)) return { supported: true, reason: `kubeconfig ${p} (KUBECONFIG)` }
  const home = options.home ?? env.HOME ?? homedir()
  const defaultPath = join(home, '.kube', 'config')
  if (fromEnv.length === 0 && (await readable(defaultPath))) return { supported: true, reason: `kubeconfig ${defaultPath}` }
  if (await inCluster()) return { supported: true, reason: `in-cluster config (KUBERNETES_SERVICE_HOST=${env.KUBERNETES_SERVICE_HOST})` }
  return { supported: false, reason: 'no kubeconfig or in-cluster config' }
}
