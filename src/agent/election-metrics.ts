import { Gauge, type Registry } from 'prom-client'
import { ELECTION_STATES } from '../../machines/leader-election.js'

interface WithDetails {
  readonly details?: Readonly<Record<string, unknown>>
}

interface ElectionDetails {
  readonly state: string
  readonly holder: string | null
  readonly sinceRenewMs: number | null
}

function electionOf(details: Readonly<Record<string, unknown>> | undefined): ElectionDetails | undefined {
  const e = details?.election
  if (typeof e !== 'object' || e === null) return undefined
  const { state, holder, sinceRenewMs } = e as Record<string, unknown>
  if (typeof state !== 'string') return undefined
  return {
    state,
    holder: typeof holder === 'string' ? holder : null,
    sinceRenewMs: typeof sinceRenewMs === 'number' ? sinceRenewMs : null,
  }
}

/**
 * The kubernetes collector's Lease election (docs/deploy.md, "Scopes"): state, holder and time
 * since this agent's last renewal, read from the collectors' health details at scrape time.
 * Transitions are counters of the collector (`tapio_collector_counted_total{counter="election_transitions"}`).
 */
export function registerElectionMetrics(registry: Registry, collectors: () => Readonly<Record<string, WithDetails>>): void {
  const state: Gauge<string> = new Gauge({
    name: 'tapio_kubernetes_election_state',
    help: 'Leader election for cluster-wide resources: 1 for the current state (candidate, follower, leader, stopped)',
    labelNames: ['collector', 'state'],
    registers: [registry],
    collect() {
      state.reset()
      for (const [name, c] of Object.entries(collectors())) {
        const e = electionOf(c.details)
        if (e) for (const s of ELECTION_STATES) state.set({ collector: name, state: s }, s === e.state ? 1 : 0)
      }
    },
  })
  const holder: Gauge<string> = new Gauge({
    name: 'tapio_kubernetes_lease_holder_info',
    help: 'Who holds the Lease, as this agent last saw it (1 for that holder)',
    labelNames: ['collector', 'holder'],
    registers: [registry],
    collect() {
      holder.reset()
      for (const [name, c] of Object.entries(collectors())) {
        const e = electionOf(c.details)
        if (e?.holder) holder.set({ collector: name, holder: e.holder }, 1)
      }
    },
  })
  const sinceRenew: Gauge<string> = new Gauge({
    name: 'tapio_kubernetes_lease_since_renew_seconds',
    help: "Seconds since this agent's last successful acquire or renewal of the Lease (absent before the first)",
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      sinceRenew.reset()
      for (const [name, c] of Object.entries(collectors())) {
        const e = electionOf(c.details)
        if (e?.sinceRenewMs != null) sinceRenew.set({ collector: name }, e.sinceRenewMs / 1000)
      }
    },
  })
}
