/** CNI conf files and libcni cache records parsed on their own (untrusted JSON in, data or a reason out). */
import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { isCniConfigFile, parseCniConfigFile, parseCniResultFile } from '../../../src/collectors/cni/cni-files.js'

const ok = <A>(r: Result.Result<A, string>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got: ${r.failure}`)
  return r.success
}
const failure = <A>(r: Result.Result<A, string>): string => {
  if (Result.isSuccess(r)) throw new Error(`expected a failure, got ${JSON.stringify(r.success)}`)
  return r.failure
}

describe('isCniConfigFile', () => {
  it('takes .conf, .conflist and .json like libcni, never hidden files', () => {
    expect(['10-bridge.conf', '10-calico.conflist', '99-x.json'].every(isCniConfigFile)).toBe(true)
    expect(['.10-bridge.conf', '.x.conflist', '.x.json', 'README', 'bridge.conf.bak', 'x.yaml', 'conf'].some(isCniConfigFile)).toBe(false)
  })
})

describe('parseCniConfigFile', () => {
  it('a conflist: its name, version and plugin types in order', () => {
    const text = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'calico' }, { type: 'portmap', snat: true }] })
    expect(ok(parseCniConfigFile('10-calico.conflist', text))).toStrictEqual({ format: 'conflist', name: 'k8s-pod-network', cniVersion: '1.0.0', plugins: ['calico', 'portmap'] })
    // A .json with plugins is a list too; without a version, none is given.
    expect(ok(parseCniConfigFile('10-x.json', JSON.stringify({ name: 'n', plugins: [{ type: 'bridge' }] })))).toStrictEqual({ format: 'conflist', name: 'n', plugins: ['bridge'] })
  })

  it('a single conf (.conf, or .json without plugins): one plugin, its type', () => {
    expect(ok(parseCniConfigFile('10-bridge.conf', JSON.stringify({ cniVersion: '0.4.0', name: 'br', type: 'bridge', bridge: 'cni0' })))).toStrictEqual({
      format: 'conf',
      name: 'br',
      cniVersion: '0.4.0',
      plugins: ['bridge'],
    })
    expect(ok(parseCniConfigFile('10-x.json', JSON.stringify({ name: 'n', type: 'ptp' })))).toStrictEqual({ format: 'conf', name: 'n', plugins: ['ptp'] })
    // plugins in a .conf file does not make it a list.
    expect(failure(parseCniConfigFile('10-x.conf', JSON.stringify({ name: 'n', plugins: [{ type: 'bridge' }] })))).toMatch(/^invalid conf: .*type/s)
  })

  it('says what is wrong: not JSON, or which field is missing or empty', () => {
    expect(failure(parseCniConfigFile('a.conf', '{ nope'))).toMatch(/^not JSON: /)
    expect(failure(parseCniConfigFile('a.conflist', JSON.stringify({ name: 'n', plugins: [] })))).toMatch(/^invalid conflist: .*plugins/s)
    expect(failure(parseCniConfigFile('a.conflist', JSON.stringify({ name: '', plugins: [{ type: 'x' }] })))).toMatch(/^invalid conflist: .*name/s)
    expect(failure(parseCniConfigFile('a.conflist', JSON.stringify({ name: 'n', plugins: [{ type: '' }] })))).toMatch(/^invalid conflist: .*type/s)
    expect(failure(parseCniConfigFile('a.conflist', JSON.stringify({ name: 'n', cniVersion: 1, plugins: [{ type: 'x' }] })))).toMatch(/cniVersion/)
    expect(failure(parseCniConfigFile('a.conf', JSON.stringify({ name: 'n', type: '' })))).toMatch(/^invalid conf: .*type/s)
    expect(failure(parseCniConfigFile('a.conf', JSON.stringify({ type: 'bridge' })))).toMatch(/^invalid conf: .*name/s)
    expect(failure(parseCniConfigFile('a.conf', JSON.stringify({ name: 'n', type: 'b', cniVersion: false })))).toMatch(/cniVersion/)
    // Every problem is named, not only the first.
    const both = failure(parseCniConfigFile('a.conflist', JSON.stringify({ name: '', plugins: [] })))
    expect(both).toMatch(/name/)
    expect(both).toMatch(/plugins/)
    const conf = failure(parseCniConfigFile('a.conf', JSON.stringify({ name: '', type: '' })))
    expect(conf).toMatch(/name/)
    expect(conf).toMatch(/type/)
    expect(failure(parseCniConfigFile('a.json', 'null'))).toMatch(/^invalid conf: /)
    expect(failure(parseCniConfigFile('a.json', '"text"'))).toMatch(/^invalid conf: /)
  })
})

describe('parseCniResultFile', () => {
  const record = {
    kind: 'cniCacheV1',
    containerId: 'c0ffee',
    ifName: 'eth0',
    networkName: 'k8s-pod-network',
    cniArgs: [
      ['K8S_POD_NAMESPACE', 'shop'],
      ['K8S_POD_NAME', 'web-1'],
      ['K8S_POD_UID', 'uid-1'],
      ['IgnoreUnknown', '1'],
    ],
    result: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'cali123', mac: 'ee:ee' }, { name: 'eth0', mac: '02:42', sandbox: '/var/run/netns/cni-1' }, { name: 'lo', sandbox: '/var/run/netns/other' }],
      ips: [{ address: '10.1.0.5/24', interface: 1 }, { address: '10.1.0.6/24', gateway: '10.1.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 }],
    },
  }

  it('the attachment: ids, network, addresses, the first gateway, the sandbox of its interface, and the pod from CNI_ARGS', () => {
    expect(ok(parseCniResultFile(JSON.stringify(record)))).toStrictEqual({
      data: {
        containerId: 'c0ffee',
        ifName: 'eth0',
        networkName: 'k8s-pod-network',
        cniVersion: '1.0.0',
        ips: [{ address: '10.1.0.5/24', interface: 1 }, { address: '10.1.0.6/24', gateway: '10.1.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 }],
        gateway: '10.1.0.1',
        interfaces: [{ name: 'cali123', mac: 'ee:ee' }, { name: 'eth0', mac: '02:42', sandbox: '/var/run/netns/cni-1' }, { name: 'lo', sandbox: '/var/run/netns/other' }],
        sandbox: '/var/run/netns/cni-1',
      },
      k8s: { namespace: 'shop', pod: 'web-1', podUid: 'uid-1', containerId: 'c0ffee' },
    })
  })

  it('without a result or CNI_ARGS: no addresses, no gateway, no sandbox, no pod', () => {
    const bare = { kind: 'cniCacheV1', containerId: 'c', ifName: 'eth0', networkName: 'n' }
    expect(ok(parseCniResultFile(JSON.stringify(bare)))).toStrictEqual({ data: { containerId: 'c', ifName: 'eth0', networkName: 'n', ips: [], interfaces: [] } })
    // Empty values are left out; a partial pod identity is kept as far as it goes.
    const partial = {
      ...bare,
      cniArgs: [
        ['K8S_POD_NAMESPACE', ''],
        ['K8S_POD_NAME', 'p'],
      ],
      result: { cniVersion: '', interfaces: [{ name: 'eth0', mac: '', sandbox: '' }], ips: [{ address: '10.0.0.1/8', gateway: '' }] },
    }
    expect(ok(parseCniResultFile(JSON.stringify(partial)))).toStrictEqual({
      data: { containerId: 'c', ifName: 'eth0', networkName: 'n', ips: [{ address: '10.0.0.1/8' }], interfaces: [{ name: 'eth0' }] },
      k8s: { pod: 'p', containerId: 'c' },
    })
    const uidOnly = { ...bare, cniArgs: [['K8S_POD_UID', 'u']] }
    expect(ok(parseCniResultFile(JSON.stringify(uidOnly))).k8s).toStrictEqual({ podUid: 'u', containerId: 'c' })
    const nsOnly = { ...bare, cniArgs: [['K8S_POD_NAMESPACE', 'ns']] }
    expect(ok(parseCniResultFile(JSON.stringify(nsOnly))).k8s).toStrictEqual({ namespace: 'ns', containerId: 'c' })
    // The sandbox is that of the attachment's own interface only.
    const otherIf = { ...bare, result: { interfaces: [{ name: 'eth1', sandbox: '/ns' }, { name: 'eth0' }] } }
    expect(ok(parseCniResultFile(JSON.stringify(otherIf))).data).not.toHaveProperty('sandbox')
  })

  it('says what is wrong: not JSON, not a cache record, or which field', () => {
    expect(failure(parseCniResultFile('{'))).toMatch(/^not JSON: /)
    const all = failure(parseCniResultFile(JSON.stringify({ kind: 'cniCacheV1', containerId: '', ifName: '', networkName: 'n' })))
    expect(all).toMatch(/containerId/)
    expect(all).toMatch(/ifName/)
    const bare = { kind: 'cniCacheV1', containerId: 'c', ifName: 'eth0', networkName: 'n' }
    for (const [bad, field] of [
      [{ ...bare, kind: 'cniCacheV2' }, 'kind'],
      [{ ...bare, containerId: '' }, 'containerId'],
      [{ ...bare, ifName: '' }, 'ifName'],
      [{ ...bare, networkName: '' }, 'networkName'],
      [{ ...bare, cniArgs: [['K8S_POD_NAME']] }, 'cniArgs'],
      [{ ...bare, result: { ips: [{ address: '' }] } }, 'address'],
      [{ ...bare, result: { ips: [{ address: '10.0.0.1/8', interface: 'eth0' }] } }, 'interface'],
      [{ ...bare, result: { ips: [{ address: '10.0.0.1/8', gateway: 1 }] } }, 'gateway'],
      [{ ...bare, result: { interfaces: [{ name: 1 }] } }, 'name'],
      [{ ...bare, result: { interfaces: [{ name: 'eth0', mac: 1 }] } }, 'mac'],
      [{ ...bare, result: { interfaces: [{ name: 'eth0', sandbox: 1 }] } }, 'sandbox'],
      [{ ...bare, result: { cniVersion: 1 } }, 'cniVersion'],
    ] as const) {
      expect(failure(parseCniResultFile(JSON.stringify(bad)))).toMatch(new RegExp(`^not a libcni cache record: .*${field}`, 's'))
    }
  })
})
