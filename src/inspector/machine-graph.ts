import type { AnyStateMachine } from 'xstate'

/** A machine as plain data for drawing: state nodes and the transitions between them. */
export interface MachineGraph {
  readonly id: string
  readonly nodes: readonly { id: string; path: string; parent: string | null; initial: string | null; type: string }[]
  readonly edges: readonly { source: string; target: string; event: string; label: string }[]
}

interface NodeLike {
  id: string
  path: string[]
  parent?: NodeLike
  type: string
  initial?: { target: NodeLike[] }
  states: Record<string, NodeLike>
  transitions: Map<string, { target?: NodeLike[] }[]>
}

/** The event as a person reads it; delays and invoked actors have generated names in XState. */
export function eventLabel(type: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(type)
  if (after) {
    const delay = after[1] as string
    return DELAY_LABELS[delay] ?? `after ${delay}`
  }
  const done = /^xstate\.done\.actor\.([^.]+)/.exec(type)
  if (done) return `${done[1]} done`
  const err = /^xstate\.error\.actor\.([^.]+)/.exec(type)
  if (err) return `${err[1]} failed`
  if (type === 'xstate.init') return 'created'
  return type
}

const DELAY_LABELS: Readonly<Record<string, string>> = {
  restartDelay: 'backoff elapsed',
  startTimeout: 'start timed out',
  stopTimeout: 'stop timed out',
}

export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const nodes: MachineGraph['nodes'][number][] = []
  const edges: MachineGraph['edges'][number][] = []
  const visit = (n: NodeLike) => {
    nodes.push({
      id: n.id,
      path: n.path.join('.'),
      parent: n.parent ? n.parent.id : null,
      initial: n.initial?.target[0]?.id ?? null,
      type: n.type,
    })
    for (const [event, ts] of n.transitions) {
      for (const t of ts) for (const target of t.target ?? []) edges.push({ source: n.id, target: target.id, event, label: eventLabel(event) })
    }
    for (const child of Object.values(n.states)) visit(child)
  }
  visit(machine.root as unknown as NodeLike)
  return { id: machine.id, nodes, edges }
}
