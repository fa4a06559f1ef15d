import { ActorCards } from './cards.js'
import { connectFeed } from './connection.js'
import { drawMachine } from './diagram.js'
import { TransitionLog } from './log.js'
import { actorName, formatRate, stateKind, statusFromState, timeOf } from './util.js'

const $ = (id) => document.getElementById(id)

/** What the page knows; rebuilt from every `hello`, so an agent restart starts from its truth. */
const model = {
  actors: new Map(), // id -> { state, context }
  last: new Map(), // id -> the transition that led to its current state
  health: new Map(), // collector name -> { status, message }
  selected: decodeURIComponent(location.hash.slice(1)) || null, // collector name
  control: false,
}
let collectorDiagram
let supervisorDiagram

const log = new TransitionLog({ body: $('log-body'), search: $('log-search'), count: $('log-count'), empty: $('log-empty') })
const cards = new ActorCards($('actor-list'), { onSelect: select, onAction: control })

function collectorIds() {
  return [...model.actors.keys()].filter((id) => id.startsWith('collector:'))
}

function select(id) {
  if (id === 'supervisor') return
  model.selected = actorName(id)
  history.replaceState(null, '', `#${encodeURIComponent(model.selected)}`)
  renderSelection()
}

/** The selected collector, or the first one while the selected name is not (yet) there. */
function selectedId() {
  const want = model.selected ? `collector:${model.selected}` : null
  if (want && model.actors.has(want)) return want
  return collectorIds()[0] ?? null
}

function renderSelection() {
  const id = selectedId()
  cards.select(id)
  const a = id ? model.actors.get(id) : undefined
  $('selected-name').textContent = id ? actorName(id) : '–'
  const pill = $('selected-state')
  pill.textContent = a?.state ?? '–'
  pill.dataset.kind = stateKind(a?.state)
  const last = id ? model.last.get(id) : undefined
  $('selected-since').textContent = last ? `since ${timeOf(last.time)} (${last.event})` : ''
  const host = $('collector-diagram')
  host.dataset.actor = id ?? ''
  host.dataset.activeState = a?.state ?? ''
  collectorDiagram?.highlight(a?.state, last)

  const sup = model.actors.get('supervisor')
  $('supervisor-state').textContent = sup?.state ?? '–'
  $('supervisor-state').dataset.kind = stateKind(sup?.state)
  supervisorDiagram?.highlight(sup?.state, model.last.get('supervisor'))
}

function statusOf(id, state) {
  if (id === 'supervisor') return statusFromState(state)
  const h = model.health.get(actorName(id))
  // The health verdict is sampled once a second; between samples the state is fresher.
  return h && stateKind(state) === 'running' ? h.status : statusFromState(state)
}

function setActor(id, state, context) {
  const prev = model.actors.get(id)
  model.actors.set(id, { state, context: context ?? prev?.context ?? {} })
  cards.setState(id, state)
  if (context) cards.setContext(id, context)
  const h = model.health.get(actorName(id))
  cards.setStatus(id, statusOf(id, state), id !== 'supervisor' && stateKind(state) === 'running' ? h?.message : undefined)
  cards.setRemoved(id, false)
}

function applyStats(s) {
  if (s.health) {
    model.health = new Map(Object.entries(s.health.collectors ?? {}))
    $('overall').textContent = s.health.status
    $('overall').dataset.status = s.health.status
  }
  const present = new Set()
  for (const a of s.actors ?? []) {
    present.add(a.id)
    setActor(a.id, a.state, a.context)
  }
  for (const id of model.actors.keys()) if (!present.has(id)) cards.setRemoved(id, true)
  let total = 0
  for (const id of collectorIds()) {
    const rate = s.rates?.[actorName(id)] ?? 0
    total += rate
    cards.setRate(id, rate)
  }
  $('total-rate').textContent = formatRate(total)
  renderSelection()
}

function onHello(h) {
  model.actors.clear()
  model.last.clear()
  model.health.clear()
  model.control = h.control === true
  cards.clear()
  cards.setControl(model.control)
  $('control-note').hidden = model.control
  collectorDiagram = h.machines?.collector ? drawMachine($('collector-diagram'), h.machines.collector) : undefined
  supervisorDiagram = h.machines?.supervisor ? drawMachine($('supervisor-diagram'), h.machines.supervisor) : undefined
  for (const r of h.recent ?? []) model.last.set(r.actor, r)
  log.reset(h.recent ?? [])
  document.body.dataset.hellos = String(Number(document.body.dataset.hellos ?? 0) + 1)
  applyStats(h)
}

function onTransition(t) {
  model.last.set(t.actor, t)
  setActor(t.actor, t.to)
  log.add(t)
  renderSelection()
}

async function control(name, action) {
  const out = $('action-result')
  cards.setBusy(name, true)
  out.textContent = `${action} ${name}…`
  delete out.dataset.ok
  try {
    const res = await fetch(`/api/collectors/${encodeURIComponent(name)}/${action}`, { method: 'POST' })
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

connectFeed('/api/inspect/stream', { hello: onHello, transition: onTransition, stats: applyStats, status: onStatus })
