import { FIXED_LAYOUTS, NODE_H, NODE_W } from './layouts.js'
import { stateKind } from './util.js'

const SVG = 'http://www.w3.org/2000/svg'
const PAD = 16
const TITLE = 22
const GAP_X = 70
const GAP_Y = 90

function svgEl(name, attrs = {}, parent) {
  const el = document.createElementNS(SVG, name)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (parent) parent.appendChild(el)
  return el
}

/** Tree of the graph's nodes by path; the root (path '') is the machine itself and is not drawn. */
function buildTree(graph) {
  const byId = new Map(graph.nodes.map((n) => [n.id, { ...n, children: [] }]))
  let root
  for (const n of byId.values()) {
    if (n.parent && byId.has(n.parent)) byId.get(n.parent).children.push(n)
    else root = n
  }
  return { byId, root }
}

/** Lay out subtrees in a wrapping grid (used for machines or states without a fixed layout). */
function gridLayout(subtrees, top, centres) {
  const maxRow = 1000
  let x = 40
  let y = top
  let rowH = 0
  const block = (n) => {
    if (n.children.length === 0) return { w: NODE_W, h: NODE_H }
    const sizes = n.children.map(block)
    return {
      w: sizes.reduce((a, s) => a + s.w, 0) + GAP_X * (sizes.length - 1) + 2 * PAD,
      h: Math.max(...sizes.map((s) => s.h)) + 2 * PAD + TITLE,
    }
  }
  const place = (n, left, topY) => {
    if (n.children.length === 0) {
      centres.set(n.path, [left + NODE_W / 2, topY + NODE_H / 2])
      return
    }
    let cx = left + PAD
    for (const c of n.children) {
      const s = block(c)
      place(c, cx, topY + PAD + TITLE)
      cx += s.w + GAP_X
    }
  }
  for (const n of subtrees) {
    const s = block(n)
    if (x > 40 && x + s.w > maxRow) {
      x = 40
      y += rowH + GAP_Y
      rowH = 0
    }
    place(n, x, y)
    x += s.w + GAP_X
    rowH = Math.max(rowH, s.h)
  }
}

/** Centres of atomic states by path: the fixed table where it covers the machine, else a grid. */
function layoutCentres(graph, tree) {
  const fixed = FIXED_LAYOUTS[graph.id]
  const centres = new Map()
  const atomics = graph.nodes.filter((n) => n.path !== '' && tree.byId.get(n.id).children.length === 0)
  if (fixed) {
    const unknown = atomics.filter((n) => !fixed.nodes[n.path])
    // Unknown states inside a known compound would land on top of its drawn children.
    const topLevelOnly = unknown.every((n) => {
      const top = n.path.split('.')[0]
      return !atomics.some((a) => a.path.split('.')[0] === top && fixed.nodes[a.path])
    })
    if (topLevelOnly) {
      for (const n of atomics) if (fixed.nodes[n.path]) centres.set(n.path, fixed.nodes[n.path])
      if (unknown.length > 0) {
        const bottom = Math.max(...[...centres.values()].map(([, y]) => y)) + NODE_H / 2 + PAD + GAP_Y
        const tops = [...new Set(unknown.map((n) => n.path.split('.')[0]))]
        gridLayout(tree.root.children.filter((c) => tops.includes(c.path)), bottom, centres)
      }
      return { centres, fixed }
    }
  }
  gridLayout(tree.root.children, 40, centres)
  return { centres, fixed: undefined }
}

/** Rectangles of every drawn state: atomic around its centre, compound around its children. */
function rectangles(tree, centres) {
  const rects = new Map()
  const visit = (n) => {
    if (n.children.length === 0) {
      const c = centres.get(n.path)
      if (c) rects.set(n.path, { x: c[0] - NODE_W / 2, y: c[1] - NODE_H / 2, w: NODE_W, h: NODE_H })
      return rects.get(n.path)
    }
    const inner = n.children.map(visit).filter(Boolean)
    if (inner.length === 0) return undefined
    const x0 = Math.min(...inner.map((r) => r.x)) - PAD
    const y0 = Math.min(...inner.map((r) => r.y)) - PAD - TITLE
    const x1 = Math.max(...inner.map((r) => r.x + r.w)) + PAD
    const y1 = Math.max(...inner.map((r) => r.y + r.h)) + PAD
    const r = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
    if (n.path !== '') rects.set(n.path, r)
    return r
  }
  visit(tree.root)
  return rects
}

/** Where the ray from the rectangle's centre towards (tx, ty) leaves it. */
function exitPoint(r, tx, ty) {
  const cx = r.x + r.w / 2
  const cy = r.y + r.h / 2
  const dx = tx - cx
  const dy = ty - cy
  if (dx === 0 && dy === 0) return [cx, cy]
  const t = Math.min(dx === 0 ? Infinity : r.w / 2 / Math.abs(dx), dy === 0 ? Infinity : r.h / 2 / Math.abs(dy))
  return [cx + dx * t, cy + dy * t]
}

/** Transitions between the same two states become one arrow carrying every event name. */
function groupEdges(graph, pathOf) {
  const groups = new Map()
  for (const e of graph.edges) {
    const s = pathOf.get(e.source)
    const t = pathOf.get(e.target)
    if (s === undefined || t === undefined) continue
    const key = `${s}>${t}`
    const g = groups.get(key) ?? { key, source: s, target: t, labels: [], events: [] }
    if (!g.labels.includes(e.label)) g.labels.push(e.label)
    g.events.push(e.event)
    groups.set(key, g)
  }
  return [...groups.values()]
}

function defaultBend(g, a, b, groupsByKey) {
  // A pair of opposite arrows would draw on top of each other: split them.
  if (groupsByKey.has(`${g.target}>${g.source}`)) return 22
  const dx = Math.abs(b.x - a.x)
  const sameRow = Math.abs(b.y - a.y) < 1
  return sameRow && dx > 1.5 * (NODE_W + GAP_X) ? 40 + dx * 0.08 : 0
}

/**
 * Draw a machine graph (from the feed's `hello`) as SVG into `container`. Returns a handle whose
 * `highlight(state, lastTransition)` marks the active state path and the arrow just taken.
 */
export function drawMachine(container, graph) {
  container.replaceChildren()
  const tree = buildTree(graph)
  const { centres, fixed } = layoutCentres(graph, tree)
  const rects = rectangles(tree, centres)
  const pathOf = new Map(graph.nodes.map((n) => [n.id, n.path]))
  const groups = groupEdges(graph, pathOf)
  const groupsByKey = new Map(groups.map((g) => [g.key, g]))

  const all = [...rects.values()]
  // Provisional bounds; replaced by the measured box (bent edges and labels included) once attached.
  const minX = Math.min(...all.map((r) => r.x)) - 50
  const maxX = Math.max(...all.map((r) => r.x + r.w)) + 30
  const minY = Math.min(...all.map((r) => r.y)) - 90
  const maxY = Math.max(...all.map((r) => r.y + r.h)) + 60

  const svg = svgEl('svg', {
    viewBox: `${minX} ${minY} ${maxX - minX} ${maxY - minY}`,
    'data-machine': graph.id,
    role: 'img',
    'aria-label': `state machine ${graph.id}`,
  })
  const defs = svgEl('defs', {}, svg)
  for (const [id, cls] of [[`${graph.id}-arrow`, ''], [`${graph.id}-arrow-last`, 'last']]) {
    const m = svgEl('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: cls }, defs)
    svgEl('path', { d: 'M0,0 L10,5 L0,10 z' }, m)
  }

  // Compound boxes first (behind), then edges, then atomic states on top.
  const nodesLayer = svgEl('g', { class: 'nodes' })
  const compoundLayer = svgEl('g', { class: 'compounds' }, svg)
  const edgeLayer = svgEl('g', { class: 'edges' }, svg)
  svg.appendChild(nodesLayer)

  const nodeEls = new Map()
  for (const n of graph.nodes) {
    const r = rects.get(n.path)
    if (!r) continue
    const treeNode = tree.byId.get(n.id)
    const compound = treeNode.children.length > 0
    const name = n.path.split('.').pop()
    const g = svgEl('g', {
      class: `node${compound ? ' compound' : ''}${n.type === 'final' ? ' final' : ''}`,
      'data-state': n.path,
      'data-kind': stateKind(n.path),
    }, compound ? compoundLayer : nodesLayer)
    svgEl('rect', { x: r.x, y: r.y, width: r.w, height: r.h, rx: compound ? 10 : 8 }, g)
    const t = compound ? svgEl('text', { x: r.x + 10, y: r.y + 6 }, g) : svgEl('text', { x: r.x + r.w / 2, y: r.y + r.h / 2 }, g)
    t.textContent = name
    svgEl('title', {}, g).textContent = n.id
    nodeEls.set(n.path, g)
  }

  // Initial-state markers: a dot with a short arrow, like UML.
  for (const n of graph.nodes) {
    if (!n.initial) continue
    const target = rects.get(pathOf.get(n.initial))
    if (!target) continue
    const x = target.x - 26
    const y = target.y + target.h / 2
    svgEl('circle', { cx: x, cy: y, r: 4.5, class: 'initial-dot' }, edgeLayer)
    const g = svgEl('g', { class: 'edge initial' }, edgeLayer)
    svgEl('path', { d: `M${x + 5},${y} L${target.x - 1},${y}`, 'marker-end': `url(#${graph.id}-arrow)` }, g)
  }

  const edgeEls = []
  const minor = new Set(fixed?.minorEvents ?? [])
  for (const g of groups) {
    const a = rects.get(g.source)
    const b = rects.get(g.target)
    if (!a || !b) continue
    const el = svgEl('g', { class: `edge${g.events.every((e) => minor.has(e)) ? ' minor' : ''}`, 'data-source': g.source, 'data-target': g.target }, edgeLayer)
    const ac = [a.x + a.w / 2, a.y + a.h / 2]
    const bc = [b.x + b.w / 2, b.y + b.h / 2]
    let d
    let labelAt
    if (g.source === g.target) {
      const [x, y] = [a.x + a.w * 0.7, a.y]
      d = `M${x},${y} C${x + 10},${y - 45} ${x + 60},${y - 30} ${a.x + a.w},${a.y + 8}`
      labelAt = [x + 40, y - 40]
    } else {
      const bend = fixed?.bends?.[g.key] ?? defaultBend(g, a, b, groupsByKey)
      const dx = bc[0] - ac[0]
      const dy = bc[1] - ac[1]
      const len = Math.hypot(dx, dy) || 1
      // Left normal of the direction (SVG y grows downwards).
      const nx = dy / len
      const ny = -dx / len
      const c = [(ac[0] + bc[0]) / 2 + nx * bend * 2, (ac[1] + bc[1]) / 2 + ny * bend * 2]
      const s = exitPoint(a, c[0], c[1])
      const e = exitPoint(b, c[0], c[1])
      d = `M${s[0]},${s[1]} Q${c[0]},${c[1]} ${e[0]},${e[1]}`
      const t = fixed?.labelAt?.[g.key] ?? 0.5
      const at = (i) => (1 - t) ** 2 * s[i] + 2 * t * (1 - t) * c[i] + t ** 2 * e[i]
      labelAt = [at(0), at(1)]
    }
    svgEl('path', { d, 'marker-end': `url(#${graph.id}-arrow)` }, el)
    const text = svgEl('text', { x: labelAt[0], y: labelAt[1] - ((g.labels.length - 1) * 14) / 2 }, el)
    g.labels.forEach((l, i) => {
      const span = svgEl('tspan', { x: labelAt[0], dy: i === 0 ? 0 : 14 }, text)
      span.textContent = l
    })
    edgeEls.push({ el, group: g })
  }

  container.appendChild(svg)
  // The drawing's measured box (bent edges and labels included); a hidden container measures
  // nothing, so a diagram drawn hidden is fitted again when shown.
  let fitted = false
  const fit = (again = false) => {
    if (fitted && !again) return
    const box = svg.getBBox()
    if (box.width > 0 && box.height > 0) {
      const m = 14
      svg.setAttribute('viewBox', `${box.x - m} ${box.y - m} ${box.width + 2 * m} ${box.height + 2 * m}`)
      fitted = true
    }
  }
  fit()

  return {
    svg,
    fit,
    /** `state` is a dotted state string (`failed.released`); `last` the transition that led there. */
    highlight(state, last) {
      svg.setAttribute('data-active-state', state ?? '')
      const active = new Set()
      if (state) {
        const parts = state.split('.')
        for (let i = 1; i <= parts.length; i++) active.add(parts.slice(0, i).join('.'))
      }
      for (const [path, g] of nodeEls) {
        const on = active.has(path)
        const compound = g.classList.contains('compound')
        g.classList.toggle('active', on && !compound)
        g.classList.toggle('active-parent', on && compound)
        if (on && !compound) g.setAttribute('data-active', 'true')
        else g.removeAttribute('data-active')
      }
      const within = (s, p) => s === p || (s ?? '').startsWith(`${p}.`)
      for (const { el, group } of edgeEls) {
        const taken = !!last && last.to === state && within(last.from, group.source) && within(last.to, group.target) && group.events.includes(last.event)
        el.classList.toggle('last', taken)
        el.querySelector('path').setAttribute('marker-end', `url(#${graph.id}-arrow${taken ? '-last' : ''})`)
      }
    },
  }
}
