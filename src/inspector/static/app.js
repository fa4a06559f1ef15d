import { ActorCards } from './cards.js'
import { connectFeed } from './connection.js'
import { drawMachine } from './diagram.js'
import { TransitionLog } from './log.js'
import { actorName, formatRate, stateKind, statusFromState, timeOf } from './util.js'

const $ = (id) => document.getElementById(id)
const SUPERVISOR_HASH = '@supervisor'

/** What the page knows; rebuilt from every `hello`, so an agent restart starts from its truth. */
const model = {
  // From transitions (fresh): what the diagram highlights.
  states: new Map(), // id -> state
  last: new Map(), // id -> the transition that led to its current state
  // From the latest snapshot (header and cards, read by the agent at one instant).
  actors: new Map(), // id -> { state, context }
  selected: decodeURIComponent(location.hash.slice(1)) || null, // collector name, or SUPERVISOR_HASH
  lastCollector: null, // the collector the diagram follows while the supervisor is selected
  control: false,
}
let collectorDiagram
let supervisorDiagram

const log = new TransitionLog({ body: $('log-body'), search: $('log-search'), count: $('log-count'), empty: $('log-empty') })
const cards = new ActorCards($('actor-list'), { onSelect: select, onAction: control })

function collectorIds() {
  return [...new Set([...model.actors.keys(), ...model.states.keys()])].filter((id) => id.startsWith('collector:'))
}

function select(id) {
  model.selected = id === 'supervisor' ? SUPERVISOR_HASH : actorName(id)
  history.replaceState(null, '', `#${encodeURIComponent(model.selected)}`)
  renderSelection()
}

/** The selected actor, or the first collector while the selected name is not (yet) there. */
function selectedId() {
  if (model.selected === SUPERVISOR_HASH) return 'supervisor'
  const want = model.selected ? `collector:${model.selected}` : null
  if (want && (model.states.has(want) || model.actors.has(want))) return want
  return collectorIds()[0] ?? null
}

function stateOf(id) {
  return model.states.get(id) ?? model.actors.get(id)?.state
}

function renderSelection() {
  const id = selectedId()
  const supervisor = id === 'supervisor'
  cards.select(id)
  const state = id ? stateOf(id) : undefined
  $('diagram-title').firstChild.textContent = supervisor ? 'Supervisor ' : 'Lifecycle of '
  $('selected-name').textContent = id && !supervisor ? actorName(id) : ''
  const pill = $('selected-state')
  pill.textContent = state ?? '–'
  pill.dataset.kind = stateKind(state)
  const last = id ? model.last.get(id) : undefined
  $('selected-since').textContent = last ? `since ${timeOf(last.time)} (${last.label ?? last.event})` : ''

  const host = $('collector-diagram')
  const supHost = $('supervisor-diagram')
  host.hidden = supervisor
  supHost.hidden = !supervisor
  // While the supervisor's machine is shown, the collector diagram keeps its collector.
  if (id && !supervisor) model.lastCollector = id
  const collector = supervisor ? (model.lastCollector ?? collectorIds()[0] ?? null) : id
  const cstate = collector ? stateOf(collector) : undefined
  host.dataset.actor = collector ?? ''
  host.dataset.activeState = cstate ?? ''
  collectorDiagram?.highlight(cstate, collector ? model.last.get(collector) : undefined)
  const sup = stateOf('supervisor')
  supHost.dataset.activeState = sup ?? ''
  supervisorDiagram?.highlight(sup, model.last.get('supervisor'))
  ;(supervisor ? supervisorDiagram : collectorDiagram)?.fit()
}

/**
 * One snapshot (hello or stats): the header and every card from it alone, so they cannot
 * disagree (the agent read actors, health and rates at one instant).
 */
function applySnapshot(s) {
  const health = s.health ?? { status: 'unknown', collectors: {} }
  $('overall').textContent = health.status
  $('overall').dataset.status = health.status
  $('snapshot-time').textContent = s.time ? `as of ${timeOf(s.time)}` : ''
  const present = new Set()
  let total = 0
  for (const a of s.actors ?? []) {
    present.add(a.id)
    model.actors.set(a.id, { state: a.state, context: a.context ?? {} })
    if (a.id === 'supervisor') {
      cards.render(a.id, { state: a.state, status: statusFromState(a.state), context: a.context })
      continue
    }
    const name = actorName(a.id)
    const h = health.collectors?.[name]
    const rate = s.rates?.[name] ?? 0
    if (!['stopped', 'idle', 'gaveUp', 'stopping'].includes(stateKind(a.state))) total += rate
    const last = model.last.get(a.id)
    cards.render(a.id, {
      state: a.state,
      status: h?.status ?? statusFromState(a.state),
      message: h?.message,
      context: a.context,
      rate,
      budget: h?.restartBudget,
      enteredAt: last && last.to === a.state ? Date.parse(last.time) : undefined,
    })
    cards.setRemoved(a.id, false)
  }
  for (const id of model.actors.keys()) {
    if (present.has(id)) continue
    model.actors.delete(id)
    cards.setRemoved(id, true)
  }
  $('total-rate').textContent = formatRate(total)
  renderSelection()
}

function onHello(h) {
  model.states.clear()
  model.actors.clear()
  model.last.clear()
  model.control = h.control === true
  cards.clear()
  cards.setControl(model.control)
  $('control-note').hidden = model.control
  collectorDiagram = h.machines?.collector ? drawMachine($('collector-diagram'), h.machines.collector) : undefined
  supervisorDiagram = h.machines?.supervisor ? drawMachine($('supervisor-diagram'), h.machines.supervisor) : undefined
  for (const r of h.recent ?? []) model.last.set(r.actor, r)
  for (const a of h.actors ?? []) model.states.set(a.id, a.state)
  log.reset(h.recent ?? [])
  document.body.dataset.hellos = String(Number(document.body.dataset.hellos ?? 0) + 1)
  applySnapshot(h)
}

/** A transition goes to the log and the diagram at once; the cards follow with the next snapshot. */
function onTransition(t) {
  model.last.set(t.actor, t)
  model.states.set(t.actor, t.to)
  log.add(t)
  renderSelection()
}

async function control(name, action) {
  const out = $('action-result')
  cards.setBusy(name, true)
  out.textContent = `${action} ${name}…`
  delete out.dataset.ok
  try {
    // Start is a restart of a stopped collector: the same endpoint, one meaning for the agent.
    const endpoint = action === 'start' ? 'restart' : action
    const res = await fetch(`/api/collectors/${encodeURIComponent(name)}/${endpoint}`, { method: 'POST' })
    const body = await res.json().catch(() => ({}))
    out.dataset.ok = String(res.ok)
    out.textContent = res.ok ? `${action} ${name}: done` : `${action} ${name} failed: ${body.error ?? res.status}`
  } catch (e) {
    out.dataset.ok = 'false'
    out.textContent = `${action} ${name} failed: ${e instanceof Error ? e.message : String(e)}`
  } finally {
    cards.setBusy(name, false)
  }
}

function onStatus(status) {
  const conn = $('conn')
  conn.dataset.status = status
  conn.textContent = status === 'open' ? 'live' : status === 'connecting' ? 'connecting…' : 'reconnecting…'
}

$('show-minor').addEventListener('change', (e) => {
  for (const id of ['collector-diagram', 'supervisor-diagram']) $(id).classList.toggle('show-minor', e.target.checked)
  // The drawing's box changes with the arrows shown: fit it again.
  collectorDiagram?.fit(true)
  supervisorDiagram?.fit(true)
})
window.addEventListener('resize', () => (selectedId() === 'supervisor' ? supervisorDiagram : collectorDiagram)?.fit())
connectFeed('/api/inspect/stream', { hello: onHello, transition: onTransition, stats: applySnapshot, status: onStatus })
