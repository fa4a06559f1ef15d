import { describe, expect, it } from 'vitest'
import { KUBERNETES_DEFAULTS, parseKubernetesConfig, RESOURCE_NAMES } from '../../../src/collectors/kubernetes/index.js'

describe('kubernetes collector config', () => {
  it('fills defaults: all namespaces, all resources', () => {
    const c = parseKubernetesConfig({})
    expect(c.namespaces).toEqual([])
    expect(c.resources).toEqual([...RESOURCE_NAMES])
    expect(c.backoff).toEqual(KUBERNETES_DEFAULTS.backoff)
    expect(c.inactivityTimeoutMs).toBeGreaterThan(c.watchTimeoutSeconds * 1000)
    expect(parseKubernetesConfig(undefined).resources).toHaveLength(11)
  })

  it('keeps what is given and merges partial backoff settings', () => {
    const c = parseKubernetesConfig({
      kubeconfig: '/etc/kube/config',
      context: 'prod',
      namespaces: ['a', 'a', 'b'],
      ignoreNamespaces: ['kube-system'],
      resources: ['pods', 'nodes'],
      selectors: { pods: { fieldSelector: 'spec.nodeName=n1' } },
      backoff: { maxMs: 60_000 },
    })
    expect(c).toMatchObject({ kubeconfig: '/etc/kube/config', context: 'prod', namespaces: ['a', 'b'], resources: ['pods', 'nodes'] })
    expect(c.backoff).toEqual({ initialMs: 500, maxMs: 60_000, jitter: 0.2 })
    expect(c.selectors.pods?.fieldSelector).toBe('spec.nodeName=n1')
  })

  it('rejects what it cannot honour, naming the path', () => {
    expect(() => parseKubernetesConfig({ resources: ['pods', 'secrets'] })).toThrow(/at \["resources"\]\[1\]/)
    expect(() => parseKubernetesConfig({ resources: ['configmaps'] })).toThrow(/at \["resources"\]\[0\]/)
    expect(() => parseKubernetesConfig({ namespaces: 'default' })).toThrow(/at \["namespaces"\]/)
    expect(() => parseKubernetesConfig({ backoff: { initialMs: -1 } })).toThrow(/at \["backoff"\]\["initialMs"\]/)
    expect(() => parseKubernetesConfig({ backoff: { initialMs: 5000, maxMs: 100 } })).toThrow(/at \["backoff"\]/)
    expect(() => parseKubernetesConfig({ selectors: { secrets: {} } })).toThrow(/at \["selectors"\]\["secrets"\]/)
    expect(() => parseKubernetesConfig({ namspaces: ['typo'] })).toThrow(/at \["namspaces"\]/)
    expect(() => parseKubernetesConfig({ inCluster: true, context: 'x' })).toThrow(/at \["inCluster"\]/)
  })

  it('leader election: client-go defaults, scopes, and timing rules with the offending path named', () => {
    const c = parseKubernetesConfig({ leaderElection: { enabled: true } })
    expect(c.leaderElection).toEqual({
      enabled: true,
      leaseName: 'tapio-agent-cluster',
      namespace: 'tapio-system',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    })
    expect(c.scopes).toEqual({})
    expect(parseKubernetesConfig({}).leaderElection.enabled).toBe(false)
    expect(() => parseKubernetesConfig({ leaderElection: { leaseDurationMs: 10_000, renewDeadlineMs: 9_000, retryPeriodMs: 2_000 } })).toThrow(
      /leaseDurationMs \(10000\) must be at least renewDeadlineMs \+ retryPeriodMs \(9000 \+ 2000\)\n\s+at \["leaderElection"\]/,
    )
    expect(() => parseKubernetesConfig({ leaderElection: { leaseDurationMs: 15_500 } })).toThrow(/whole seconds[\s\S]*\["leaderElection"\]\["leaseDurationMs"\]/)
    expect(() => parseKubernetesConfig({ scopes: { services: 'node' } })).toThrow(/only pods can be node-local[\s\S]*\["scopes"\]\["services"\]/)
    expect(() => parseKubernetesConfig({ scopes: { pods: 'galaxy' } })).toThrow(/scopes/)
    expect(() => parseKubernetesConfig({ leaderElection: { leaseName: 'Not A Name' } })).toThrow(/leaseName/)
    expect(parseKubernetesConfig({ scopes: { pods: 'cluster' } }).scopes).toEqual({ pods: 'cluster' })
  })
})
