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

/** Human label of an event type: delays and invoke results read better shortened. */
function label(event: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(event)
  if (after) return `after ${after[1]}`
  const done = /^xstate\.done\.actor\.(.+)$/.exec(event)
  if (done) return `${done[1]} done`
  const err = /^xstate\.error\.actor\.(.+)$/.exec(event)
  if (err) return `${err[1]} failed`
  return event
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
      for (const t of ts) for (const target of t.target ?? []) edges.push({ source: n.id, target: target.id, event, label: label(event) })
    }
    for (const child of Object.values(n.states)) visit(child)
  }
  visit(machine.root as unknown as NodeLike)
  return { id: machine.id, nodes, edges }
}
