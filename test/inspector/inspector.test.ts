import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectorLifecycleMachine, LIFECYCLE_STATES } from '../../machines/collector-lifecycle.js'
import { SUPERVISOR_STATES } from '../../machines/supervisor.js'
import { Agent } from '../../src/agent/agent.js'
import { type AgentConfig, loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { type MachineGraph, machineGraph } from '../../src/inspector/machine-graph.js'

/**
 * The inspector page in a real browser (Debian's Chromium driven by playwright-core) against an
 * in-process agent with synthetic collectors, one of which fails once after a number of events.
 */

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')
const kinds = builtinKinds()

function config(dir: string, opts: { flaky: boolean; port?: number; allowControl?: boolean }): AgentConfig {
  const flaky = opts.flaky
    ? `
  flaky:
    kind: synthetic
    rate: 100
    batchSize: 10
    failAfter: 150
    faultyStarts: 1
    # Slow enough for a person (and the test) to watch failed -> restarting -> running.
    policy: { backoff: { initialMs: 1500, maxMs: 1500, factor: 1, jitter: 0 } }`
    : ''
  return loadConfigText(
    `
collectors:
  steady:
    kind: synthetic
    rate: 200
    batchSize: 10${flaky}
outputs:
  file: { path: ${JSON.stringify(join(dir, 'events.ndjson'))} }
http: { host: 127.0.0.1, port: ${opts.port ?? 0}, allowControl: ${opts.allowControl ?? true} }
`,
    'inspector test',
    validators(kinds),
  )
}

const logLines: string[] = []
async function startAgent(cfg: AgentConfig): Promise<Agent> {
  const agent = new Agent(cfg, { kinds: kindMap(kinds), logger: createLogger('info', (l) => void logLines.push(l)) })
  await agent.start()
  return agent
}

/** `to` states of one actor in the page's log, oldest first. */
async function loggedStates(page: Page, actor: string): Promise<string[]> {
  return page.$$eval(`#log-body tr[data-actor="${actor}"]`, (rows) =>
    rows
      .map((r) => ({ seq: Number(r.getAttribute('data-seq')), to: r.getAttribute('data-to') ?? '' }))
      .sort((a, b) => a.seq - b.seq)
      .map((r) => r.to),
  )
}

/** Whether `want` occurs in order (not necessarily adjacent) in `seq`, each item matched by prefix. */
function inOrder(seq: readonly string[], want: readonly string[]): boolean {
  let i = 0
  for (const s of seq) if (i < want.length && (s === want[i] || s.startsWith(`${want[i]}.`))) i++
  return i === want.length
}

async function waitForLog(page: Page, actor: string, want: string[], timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const seen = await loggedStates(page, actor)
    if (inOrder(seen, want)) return seen
    if (Date.now() > deadline)
      throw new Error(`log of ${actor} never showed ${want.join(' -> ')}; it shows ${seen.join(' -> ')}\nagent log:\n${logLines.slice(-15).join('')}`)
    await page.waitForTimeout(100)
  }
}


interface DrawnNode {
  state: string
  compound: boolean
  x: number
  y: number
  w: number
  h: number
}

/** Draw `graph` with the page's own diagram module and report the boxes and the highlight. */
async function drawInPage(page: Page, graph: MachineGraph, state: string, last: object): Promise<{ nodes: DrawnNode[]; active: string[]; parents: string[]; lastTarget: string | null }> {
  // A string, evaluated by the browser: the test is compiled without DOM types.
  return (await page.evaluate(`(async () => {
    const { drawMachine } = await import('/inspect/diagram.js')
    const host = document.createElement('div')
    host.className = 'diagram'
    document.body.append(host)
    drawMachine(host, ${JSON.stringify(graph)}).highlight(${JSON.stringify(state)}, ${JSON.stringify(last)})
    const nodes = [...host.querySelectorAll('g.node')].map((g) => {
      const r = g.querySelector('rect')
      const n = (a) => Number(r.getAttribute(a))
      return { state: g.dataset.state, compound: g.classList.contains('compound'), x: n('x'), y: n('y'), w: n('width'), h: n('height') }
    })
    const states = (sel) => [...host.querySelectorAll(sel)].map((g) => g.dataset.state)
    const result = { nodes, active: states('g.node.active'), parents: states('g.node.active-parent'), lastTarget: host.querySelector('g.edge.last')?.dataset.target ?? null }
    host.remove()
    return result
  })()`)) as { nodes: DrawnNode[]; active: string[]; parents: string[]; lastTarget: string | null }
}

function overlaps(a: DrawnNode, b: DrawnNode): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

function inside(inner: DrawnNode, outer: DrawnNode): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h
}

function expectTidy(nodes: DrawnNode[]): void {
  const atomics = nodes.filter((n) => !n.compound)
  for (const a of atomics) for (const b of atomics) if (a !== b) expect(overlaps(a, b), `${a.state} overlaps ${b.state}`).toBe(false)
  for (const c of nodes.filter((n) => n.compound)) {
    for (const a of atomics) {
      const child = a.state.startsWith(`${c.state}.`)
      expect(child ? inside(a, c) : !overlaps(a, c), `${a.state} vs box ${c.state}`).toBe(true)
    }
  }
}

describe('inspector page in Chromium', () => {
  let dir: string
  let agent: Agent | undefined
  let browser: Browser | undefined

  beforeAll(async () => {
    // A missing browser is a failure with a fix, never a skip.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (listed in scripts/apt-packages.txt)`)
    dir = mkdtempSync(join(tmpdir(), 'tapio-inspector-'))
    mkdirSync(ARTIFACTS, { recursive: true })
    agent = await startAgent(config(dir, { flaky: false }))
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  })

  afterAll(async () => {
    await browser?.close()
    await agent?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('shows actors, draws the machines, follows a failure and restart live, filters the log, and controls collectors', { timeout: 120_000 }, async () => {
    const url = agent!.httpUrl!
    const page = await browser!.newPage({ viewport: { width: 1500, height: 1150 } })
    const requests: string[] = []
    const pageErrors: string[] = []
    page.on('request', (r) => requests.push(r.url()))
    page.on('pageerror', (e) => pageErrors.push(e.message))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text())
    })
    try {
      // The hash selects a collector that does not exist yet: the page picks it up when it appears.
      await page.goto(`${url}/inspect#flaky`)
      expect(await page.title()).toBe('tapio inspector')
      await page.waitForSelector('#conn[data-status="open"]')
      await page.waitForSelector('.card[data-actor="supervisor"][data-state="running"]')
      await page.waitForSelector('.card[data-actor="collector:steady"][data-state="running"][data-status="ok"]')
      await expect.poll(() => page.getAttribute('.card[data-actor="collector:steady"]', 'data-rate').then(Number), { timeout: 20_000 }).toBeGreaterThan(0)

      // Both machines are drawn with every state and labelled transitions.
      const drawn = await page.$$eval('#collector-diagram svg g.node', (gs) => gs.map((g) => g.getAttribute('data-state')))
      for (const s of [...LIFECYCLE_STATES, 'failed.releasing', 'failed.released', 'restarting.releasing', 'restarting.waiting']) expect(drawn).toContain(s)
      const supDrawn = await page.$$eval('#supervisor-diagram svg g.node', (gs) => gs.map((g) => g.getAttribute('data-state')))
      for (const s of SUPERVISOR_STATES) expect(supDrawn).toContain(s)
      const labels = await page.$$eval('#collector-diagram svg .edge text', (ts) => ts.map((t) => t.textContent ?? '').join(' '))
      for (const l of ['START', 'SOURCE_FAILED', 'RESTART_AFTER', 'GIVE_UP', 'backoff elapsed', 'start done']) expect(labels).toContain(l)
      expect(await page.getAttribute('#supervisor-diagram svg', 'data-active-state')).toBe('running')
      // Restart/stop buttons are there when the agent allows control.
      expect(await page.isVisible('button[data-action="restart"][data-collector="steady"]')).toBe(true)

      // Record every state the diagram highlights for the selected collector, as it happens.
      // (A string: the test is compiled without DOM types; this runs in the page.)
      await page.evaluate(`(() => {
        const host = document.getElementById('collector-diagram')
        window.__seen = []
        new MutationObserver((records) => {
          // Several mutations can arrive in one batch: each record's old value is the state before it.
          const values = [...records.slice(1).map((r) => r.oldValue ?? ''), host.dataset.activeState ?? '']
          if (host.dataset.actor === 'collector:flaky') window.__seen.push(...values)
        }).observe(host, { attributes: true, attributeFilter: ['data-active-state'], attributeOldValue: true })
      })()`)

      // Add the faulty collector while the page watches: it runs, fails once, and is restarted.
      await agent!.reload(config(dir, { flaky: true }))
      const flakyLog = await waitForLog(page, 'collector:flaky', ['starting', 'running', 'failed.releasing', 'failed.released', 'restarting.waiting', 'starting', 'running'])
      await page.waitForSelector('.card[data-actor="collector:flaky"][data-state="running"]')
      expect(await page.textContent('.card[data-actor="collector:flaky"] .card-error')).toContain('injected failure after 150 events')
      expect(flakyLog.length).toBeGreaterThanOrEqual(7)

      // The highlight followed: running -> failed -> restarting -> starting -> running.
      const highlighted = (await page.evaluate('window.__seen')) as string[]
      expect(inOrder(highlighted, ['running', 'failed', 'restarting', 'starting', 'running']), highlighted.join(' -> ')).toBe(true)
      expect(await page.getAttribute('#collector-diagram', 'data-actor')).toBe('collector:flaky')
      expect(await page.$$eval('#collector-diagram g.node.active', (gs) => gs.map((g) => g.getAttribute('data-state')))).toEqual(['running'])
      expect(await page.getAttribute('#collector-diagram g.edge.last', 'data-target')).toBe('running')

      // Search narrows the log to matching rows; nonsense matches nothing; clearing shows all again.
      const total = await page.locator('#log-body tr').count()
      await page.fill('#log-search', 'flaky restarting.waiting')
      const shown = await page.$$eval('#log-body tr:not([hidden])', (rows) => rows.map((r) => r.textContent ?? ''))
      expect(shown.length).toBeGreaterThanOrEqual(2)
      for (const text of shown) {
        expect(text).toContain('collector:flaky')
        expect(text).toContain('restarting.waiting')
      }
      expect(shown.length).toBeLessThan(total)
      await page.fill('#log-search', 'no-such-state-anywhere')
      expect(await page.locator('#log-body tr:not([hidden])').count()).toBe(0)
      expect(await page.isVisible('#log-empty')).toBe(true)
      await page.fill('#log-search', '')
      expect(await page.locator('#log-body tr:not([hidden])').count()).toBe(await page.locator('#log-body tr').count())

      // The restart button takes the collector through restarting back to running.
      const before = (await loggedStates(page, 'collector:flaky')).length
      await page.click('button[data-action="restart"][data-collector="flaky"]')
      await page.waitForSelector('#action-result[data-ok="true"]', { timeout: 30_000 })
      expect(await page.textContent('#action-result')).toBe('restart flaky: done')
      const after = await waitForLog(page, 'collector:flaky', ['restarting.releasing', 'restarting.waiting', 'starting', 'running'])
      expect(inOrder(after.slice(before), ['restarting.releasing', 'restarting.waiting', 'starting', 'running'])).toBe(true)
      await page.waitForSelector('#collector-diagram g.node.active[data-state="running"]')
      await page.waitForSelector('.card[data-actor="collector:flaky"][data-state="running"][data-restarts="2"]')
      await expect.poll(() => page.getAttribute('.card[data-actor="collector:flaky"]', 'data-rate').then(Number), { timeout: 20_000 }).toBeGreaterThan(0)

      await page.screenshot({ path: join(ARTIFACTS, 'inspector.png'), fullPage: true })

      // The stop button stops the collector (it stays registered); restart brings it back.
      await page.click('button[data-action="stop"][data-collector="steady"]')
      await page.waitForSelector('#action-result[data-ok="true"]')
      await page.waitForSelector('.card[data-actor="collector:steady"][data-state="stopped"]')
      await waitForLog(page, 'collector:steady', ['running', 'stopping', 'stopped'])
      expect(await page.getAttribute('.card[data-actor="collector:steady"]', 'data-removed')).not.toBe('true')
      await page.click('button[data-action="start"][data-collector="steady"]')
      await page.waitForSelector('#action-result[data-ok="true"]', { timeout: 30_000 })
      await waitForLog(page, 'collector:steady', ['running', 'stopping', 'stopped', 'starting', 'running'])
      await page.waitForSelector('.card[data-actor="collector:steady"][data-state="running"]')

      // Everything came from the agent itself: no CDN, no fonts, no third parties.
      expect(requests.length).toBeGreaterThan(0)
      for (const r of requests) expect(r.startsWith(`${url}/`), r).toBe(true)
      expect(pageErrors).toEqual([])
    } finally {
      await page.close()
    }
  })

  it('lays out machines it has no fixed layout for, and states the fixed layout does not know', async () => {
    const page = await browser!.newPage()
    try {
      await page.goto(`${agent!.httpUrl}/inspect`)
      await page.waitForSelector('#conn[data-status="open"]')

      // A machine of its own: everything on the generic grid.
      const node = (path: string, parent: string | null, initial: string | null = null) => ({
        id: path ? `m.${path}` : 'm',
        path,
        parent,
        initial,
        type: initial ? 'compound' : 'atomic',
      })
      const custom: MachineGraph = {
        id: 'm',
        nodes: [node('', null, 'm.a'), node('a', 'm'), node('b', 'm'), node('c', 'm'), node('d', 'm', 'm.d.x'), node('d.x', 'm.d'), node('d.y', 'm.d')],
        edges: [
          { source: 'm.a', target: 'm.b', event: 'NEXT', label: 'NEXT' },
          { source: 'm.b', target: 'm.c', event: 'NEXT', label: 'NEXT' },
          { source: 'm.a', target: 'm.d', event: 'GO', label: 'GO' },
          { source: 'm.d.x', target: 'm.d.y', event: 'STEP', label: 'STEP' },
        ],
      }
      const drawn = await drawInPage(page, custom, 'd.y', { from: 'a', to: 'd.y', event: 'GO' })
      expect(drawn.nodes.map((n) => n.state).sort()).toEqual(['a', 'b', 'c', 'd', 'd.x', 'd.y'])
      expectTidy(drawn.nodes)
      expect(drawn.active).toEqual(['d.y'])
      expect(drawn.parents).toEqual(['d'])
      expect(drawn.lastTarget).toBe('d')

      // The lifecycle machine grown by a state: the known ones keep their places, the new one goes below.
      const base = machineGraph(collectorLifecycleMachine)
      const grown: MachineGraph = {
        ...base,
        nodes: [...base.nodes, { id: 'collector.paused', path: 'paused', parent: 'collector', initial: null, type: 'atomic' }],
        edges: [...base.edges, { source: 'collector.running', target: 'collector.paused', event: 'PAUSE', label: 'PAUSE' }],
      }
      const both = await drawInPage(page, grown, 'paused', { from: 'running', to: 'paused', event: 'PAUSE' })
      expectTidy(both.nodes)
      const paused = both.nodes.find((n) => n.state === 'paused')!
      expect(Math.max(...both.nodes.filter((n) => n.state !== 'paused').map((n) => n.y + n.h))).toBeLessThan(paused.y)
      expect(both.active).toEqual(['paused'])
      expect(both.lastTarget).toBe('paused')
    } finally {
      await page.close()
    }
  })

  it('reconnects when the agent restarts and hides the buttons when control is off', { timeout: 90_000 }, async () => {
    const url = agent!.httpUrl!
    const port = Number(new URL(url).port)
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } })
    try {
      await page.goto(`${url}/inspect`)
      await page.waitForSelector('#conn[data-status="open"]')
      expect(await page.getAttribute('body', 'data-hellos')).toBe('1')
      expect(await page.locator('button[data-action="restart"]:visible').count()).toBeGreaterThan(0)

      const old = agent!
      agent = undefined
      await old.stop()
      await page.waitForSelector('#conn[data-status="reconnecting"]')

      // Same address, new process state: the page must notice by itself and start over from it.
      agent = await startAgent(config(dir, { flaky: false, port, allowControl: false }))
      await page.waitForSelector('body[data-hellos="2"]', { timeout: 30_000 })
      await page.waitForSelector('#conn[data-status="open"]')
      await page.waitForSelector('.card[data-actor="collector:steady"][data-state="running"]')
      expect(await page.locator('.card[data-actor="collector:flaky"]').count()).toBe(0)
      expect(await page.locator('button[data-action]:visible').count()).toBe(0)
      expect(await page.isVisible('#control-note')).toBe(true)
    } finally {
      await page.close()
    }
  })
})
