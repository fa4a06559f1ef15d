import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { type AgentConfig, loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { aggregateStatus, type ComponentStatus } from '../../src/core/status.js'

/**
 * What an operator sees on the inspector page (issue 14 item 8), in Debian's Chromium against an
 * in-process agent: cards, diagram and log on one screen at 1280x720 and 1440x900; the backoff,
 * the restart budget and the give-up reason on the cards; header and cards always from the same
 * snapshot; Start (and no rate) on a stopped collector; readable event names in the log; a live
 * sample of a collector's events on request. Screenshots of each state go to
 * test-artifacts/inspector/ (running, restarting, gave-up, stopped).
 */

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'inspector')
const kinds = builtinKinds()
const BACKOFF_MS = 3000

function config(dir: string, opts: { doomed: boolean }): AgentConfig {
  const doomed = opts.doomed
    ? `
  doomed:
    kind: synthetic
    failAtStart: true
    policy: { maxRestarts: 2, withinMs: 60000, backoff: { initialMs: 200, maxMs: 200, factor: 1, jitter: 0 } }`
    : ''
  return loadConfigText(
    `
collectors:
  steady:
    kind: synthetic
    rate: 200
    batchSize: 10
  flaky:
    kind: synthetic
    rate: 100
    batchSize: 10
    failAfter: 150
    # A long backoff, so the restarting state can be looked at (and photographed).
    policy: { maxRestarts: 50, withinMs: 600000, backoff: { initialMs: ${BACKOFF_MS}, maxMs: ${BACKOFF_MS}, factor: 1, jitter: 0 } }${doomed}
outputs:
  file: { path: ${JSON.stringify(join(dir, 'events.ndjson'))} }
http: { host: 127.0.0.1, port: 0, allowControl: true }
`,
    'inspector ux test',
    validators(kinds),
  )
}

interface Box {
  top: number
  left: number
  bottom: number
  right: number
}

/** Layout facts measured in the page (a string: the test is compiled without DOM types). */
async function layout(page: Page): Promise<{
  viewport: { w: number; h: number }
  scroll: { w: number; h: number }
  cards: Box[]
  diagram: Box
  nodes: { state: string; box: Box; fontPx: number }[]
  logHead: Box
  logRows: Box[]
}> {
  return (await page.evaluate(`(() => {
    const box = (e) => { const r = e.getBoundingClientRect(); return { top: r.top, left: r.left, bottom: r.bottom, right: r.right } }
    const visibleNodes = [...document.querySelectorAll('#collector-diagram svg g.node:not(.compound)')]
    return {
      viewport: { w: innerWidth, h: innerHeight },
      scroll: { w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight },
      cards: [...document.querySelectorAll('#actor-list .card')].slice(0, 3).map(box),
      diagram: box(document.querySelector('#collector-diagram svg')),
      nodes: visibleNodes.map((g) => ({ state: g.dataset.state, box: box(g), fontPx: g.querySelector('text').getBoundingClientRect().height })),
      logHead: box(document.querySelector('.log .panel-head')),
      logRows: [...document.querySelectorAll('#log-body tr:not([hidden])')].slice(0, 5).map(box),
    }
  })()`)) as Awaited<ReturnType<typeof layout>>
}

function expectInside(what: string, b: Box, vp: { w: number; h: number }): void {
  expect(b.top, `${what} top`).toBeGreaterThanOrEqual(0)
  expect(b.left, `${what} left`).toBeGreaterThanOrEqual(0)
  expect(b.bottom, `${what} bottom`).toBeLessThanOrEqual(vp.h)
  expect(b.right, `${what} right`).toBeLessThanOrEqual(vp.w)
  expect(b.bottom - b.top, `${what} height`).toBeGreaterThan(0)
}

/** Cards, diagram and log all on screen, without scrolling the page, and the diagram legible. */
async function expectOneScreen(page: Page, size: string): Promise<void> {
  const l = await layout(page)
  expect(l.scroll, `${size}: the page itself does not scroll`).toEqual({ w: l.viewport.w, h: l.viewport.h })
  expect(l.cards.length).toBe(3)
  l.cards.forEach((c, i) => expectInside(`${size} card ${i}`, c, l.viewport))
  expectInside(`${size} diagram`, l.diagram, l.viewport)
  expect(l.nodes.length).toBeGreaterThanOrEqual(10)
  for (const n of l.nodes) {
    expectInside(`${size} state ${n.state}`, n.box, l.viewport)
    // State names stay readable: the diagram is scaled to fit, not shrunk to a thumbnail.
    expect(n.fontPx, `${size} text of ${n.state}`).toBeGreaterThanOrEqual(9)
  }
  expectInside(`${size} log head`, l.logHead, l.viewport)
  expect(l.logRows.length).toBeGreaterThanOrEqual(5)
  l.logRows.forEach((r, i) => expectInside(`${size} log row ${i}`, r, l.viewport))
}

const card = (name: string) => `.card[data-actor="collector:${name}"]`

describe('inspector page: what an operator sees (Chromium)', () => {
  let dir: string
  let agent: Agent | undefined
  let browser: Browser | undefined

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (listed in scripts/apt-packages.txt)`)
    dir = mkdtempSync(join(tmpdir(), 'tapio-inspector-ux-'))
    mkdirSync(ARTIFACTS, { recursive: true })
    agent = new Agent(config(dir, { doomed: false }), { kinds: kindMap(kinds), logger: createLogger('error', () => {}) })
    await agent.start()
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

  it('one screen; backoff, budget and give-up reason on the cards; header agrees with the cards; Start on a stopped collector; readable log; live sample', { timeout: 180_000 }, async () => {
    const url = agent!.httpUrl!
    const page = await browser!.newPage({ viewport: { width: 1280, height: 720 } })
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text())
    })
    const status = async () => (await (await fetch(`${url}/api/status`)).json()) as { streams: { inspectSample: { clients: number; accepted: number } } }
    try {
      await page.goto(`${url}/inspect#flaky`)
      await page.waitForSelector('#conn[data-status="open"]')
      // Every time the page changes, the header's status and the cards' statuses, as shown.
      await page.evaluate(`(() => {
        window.__shown = []
        const record = () => window.__shown.push({
          header: document.getElementById('overall').dataset.status,
          cards: [...document.querySelectorAll('#actor-list .card:not([data-actor="supervisor"]):not([data-removed="true"])')].map((c) => c.dataset.status),
        })
        new MutationObserver(record).observe(document.body, { subtree: true, attributes: true, childList: true, characterData: true })
      })()`)

      // Running.
      await page.waitForSelector(`${card('steady')}[data-state="running"][data-status="ok"]`)
      await expect.poll(() => page.getAttribute(card('steady'), 'data-rate').then(Number), { timeout: 20_000 }).toBeGreaterThan(0)
      await page.waitForSelector(`${card('flaky')}[data-state="running"]`)
      await page.waitForSelector('#log-body tr')
      await page.waitForFunction(`document.querySelectorAll('#log-body tr').length >= 5`)
      await expectOneScreen(page, '1280x720')
      // No restarts yet: the whole budget is left.
      expect(await page.textContent(`${card('steady')} .card-budget`)).toMatch(/^budget (\d+)\/\1 per \d+ (s|min)$/)
      await page.screenshot({ path: join(ARTIFACTS, 'running-1280x720.png') })

      // Restarting: the backoff counts down on the card, the budget is one restart smaller.
      await page.waitForSelector(`${card('flaky')}[data-state="restarting.waiting"]`, { timeout: 30_000 })
      expect(await page.getAttribute(card('flaky'), 'data-backoff-ms')).toBe(String(BACKOFF_MS))
      expect(await page.textContent(`${card('flaky')} .card-backoff`)).toMatch(/^restart in \d+(\.\d)? (s|ms) \(backoff 3\.0 s\)$/)
      expect(await page.getAttribute(card('flaky'), 'data-status')).toBe('recoverable_error')
      const remaining = Number(await page.getAttribute(card('flaky'), 'data-budget-remaining'))
      const restarts = Number(await page.getAttribute(card('flaky'), 'data-restarts'))
      // The restart being waited for is granted (counted in the window) but not yet made.
      expect(remaining).toBe(50 - (restarts + 1))
      expect(await page.textContent(`${card('flaky')} .card-error`)).toContain('injected failure after 150 events')
      expect(await page.textContent('#overall')).toBe('recoverable_error')
      await page.screenshot({ path: join(ARTIFACTS, 'restarting-1280x720.png') })
      await page.waitForSelector(`${card('flaky')}[data-state="running"]`, { timeout: 30_000 })

      // Header and cards come from one snapshot: over a failure and a recovery they always agree.
      const shown = (await page.evaluate('window.__shown')) as { header: ComponentStatus; cards: ComponentStatus[] }[]
      const disagreements = shown.filter((s) => s.cards.length > 0 && s.header !== aggregateStatus(s.cards))
      expect(disagreements.slice(0, 3)).toEqual([])
      const headers = new Set(shown.map((s) => s.header))
      expect(headers.has('ok') && headers.has('recoverable_error'), [...headers].join(',')).toBe(true)

      // Readable events in the log: no XState-generated names; what the event carried is shown.
      const labels = await page.$$eval('#log-body tr .event-label', (ls) => ls.map((l) => l.textContent ?? ''))
      expect(labels.filter((l) => l.startsWith('xstate.'))).toEqual([])
      expect(labels).toContain('backoff elapsed')
      expect(labels).toContain('start done')
      const restartRow = page.locator('#log-body tr[data-actor="collector:flaky"][data-event="RESTART_AFTER"]').first()
      expect(await restartRow.locator('.event-detail').textContent()).toBe(`restart in ${BACKOFF_MS} ms`)
      const failRow = page.locator('#log-body tr[data-actor="collector:flaky"][data-event="SOURCE_FAILED"]').first()
      expect(await failRow.locator('.event-detail').textContent()).toContain('injected failure after 150 events')
      expect(await page.getAttribute('#log-body tr[data-label="backoff elapsed"]', 'data-event')).toMatch(/^xstate\.after\.restartDelay\./)

      // Given up: the reason on the card, no budget left, Restart only (no Stop).
      await agent!.reload(config(dir, { doomed: true }))
      await page.waitForSelector(`${card('doomed')}[data-state="gaveUp"][data-status="permanent_error"]`, { timeout: 30_000 })
      expect(await page.textContent(`${card('doomed')} .card-gaveup`)).toMatch(/^gave up: restart intensity exceeded: 2 restarts within 60000 ms \(max 2\); last error: start failed: .*injected start failure/)
      expect(await page.getAttribute(card('doomed'), 'data-budget-remaining')).toBe('0')
      expect(await page.textContent(`${card('doomed')} .card-budget`)).toBe('budget 0/2 per 60 s')
      expect(await page.$$eval(`${card('doomed')} .card-actions button`, (bs) => bs.map((b) => b.getAttribute('data-action')))).toEqual(['restart'])
      expect(await page.textContent(`${card('doomed')} .card-rate b`)).toBe('–')
      expect(await page.textContent('#overall')).toBe('permanent_error')
      // Selecting the card shows its machine, at gaveUp.
      await page.click(`${card('doomed')} .card-name`)
      await page.waitForSelector('#collector-diagram[data-actor="collector:doomed"] g.node.active[data-state="gaveUp"]')
      await page.screenshot({ path: join(ARTIFACTS, 'gave-up-1280x720.png') })

      // A live sample of a collector's events, only while its card asks for one.
      expect((await status()).streams.inspectSample.clients).toBe(0)
      await page.click(`${card('steady')} button[data-toggle="sample"]`)
      await page.waitForSelector(`${card('steady')} .card-sample .sample-row`, { timeout: 20_000 })
      const rows = await page.$$eval(`${card('steady')} .card-sample .sample-row`, (rs) => rs.map((r) => ({ type: r.getAttribute('data-type'), text: r.textContent ?? '' })))
      expect(rows.length).toBeGreaterThanOrEqual(1)
      expect(rows.length).toBeLessThanOrEqual(8)
      for (const r of rows) expect(r.type).toBe('synthetic.tick')
      expect((await status()).streams.inspectSample.clients).toBe(1)
      // Other cards sample nothing.
      expect(await page.locator(`${card('flaky')} .card-sample .sample-row`).count()).toBe(0)
      await page.screenshot({ path: join(ARTIFACTS, 'sample-1280x720.png') })
      await page.click(`${card('steady')} button[data-toggle="sample"]`)
      expect(await page.isVisible(`${card('steady')} .card-sample`)).toBe(false)
      await expect.poll(async () => (await status()).streams.inspectSample.clients, { timeout: 10_000 }).toBe(0)

      // Stopped: Start (not Stop or Restart), and no rate.
      expect(await page.$$eval(`${card('steady')} .card-actions button`, (bs) => bs.map((b) => b.getAttribute('data-action')))).toEqual(['restart', 'stop'])
      await page.click(`${card('steady')} button[data-action="stop"]`)
      await page.waitForSelector('#action-result[data-ok="true"]')
      await page.waitForSelector(`${card('steady')}[data-state="stopped"][data-status="stopped"]`)
      expect(await page.$$eval(`${card('steady')} .card-actions button`, (bs) => bs.map((b) => b.getAttribute('data-action')))).toEqual(['start'])
      expect(await page.textContent(`${card('steady')} .card-actions button`)).toBe('Start')
      expect(await page.textContent(`${card('steady')} .card-rate b`)).toBe('–')
      expect(await page.getAttribute(card('steady'), 'data-rate')).toBe('0')
      expect(await page.getAttribute(`${card('steady')} .spark polyline`, 'points')).toBe('')
      await page.click(`${card('steady')} .card-name`)
      await page.waitForSelector('#collector-diagram[data-actor="collector:steady"] g.node.active[data-state="stopped"]')
      await page.screenshot({ path: join(ARTIFACTS, 'stopped-1280x720.png') })

      // The same screen at 1440x900.
      await page.setViewportSize({ width: 1440, height: 900 })
      await page.waitForTimeout(300)
      await expectOneScreen(page, '1440x900')
      await page.screenshot({ path: join(ARTIFACTS, 'all-states-1440x900.png') })

      // Start brings it back.
      await page.click(`${card('steady')} button[data-action="start"]`)
      await page.waitForSelector(`${card('steady')}[data-state="running"][data-status="ok"]`, { timeout: 30_000 })
      expect(await page.$$eval(`${card('steady')} .card-actions button`, (bs) => bs.map((b) => b.getAttribute('data-action')))).toEqual(['restart', 'stop'])
      expect(pageErrors).toEqual([])
    } finally {
      await page.close()
    }
  })
})
