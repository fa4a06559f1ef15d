import { describe, expect, it } from 'vitest'
import { KUBERNETES_EVENT_TYPES } from '../../../src/collectors/kubernetes/index.js'
import { makeEvent, validateEvent } from '../../../src/events/event.js'
import type { DataOf } from '../../../src/events/families.js'

describe('kubernetes event families', () => {
  it('are typed through EventDataMap and validated at run time', () => {
    // Compile-time: these data shapes are checked against the declared families.
    const ready: DataOf<'k8s.node.ready'> = { name: 'n', uid: 'u', status: 'True', previousStatus: 'Unknown' }
    const added: DataOf<'k8s.pod.added'> = {
      kind: 'Pod',
      name: 'p',
      uid: 'u',
      resourceVersion: '1',
      labels: {},
      ownerReferences: [],
      ownerChain: [],
    }
    expect(validateEvent(makeEvent('kubernetes', 'k8s.node.ready', ready))._tag).toBe('Success')
    expect(validateEvent(makeEvent('kubernetes', 'k8s.pod.added', added))._tag).toBe('Success')
    const bad = validateEvent({ ...makeEvent('kubernetes', 'k8s.pod.added', added), data: { kind: 'Pod' } })
    expect(bad._tag).toBe('Failure')
    expect(String((bad as { failure: unknown }).failure)).toContain('["data"]["name"]')
    expect(KUBERNETES_EVENT_TYPES).toHaveLength(39)
  })
})
