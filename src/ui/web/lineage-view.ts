/** The lineage graph around a model: laid out by dagre (layered, parents above children), drawn as SVG; nodes link to their pages. */
import dagre from '@dagrejs/dagre'
import { h, svg, modelHref } from './dom.js'
import type { ModelPayload } from '../shapes.js'

const W = 210, H = 34

export function lineageView(l: ModelPayload['lineage']): HTMLElement {
  if (l.nodes.length <= 1) return h('p', { class: 'muted' }, 'No parents and no children in this zoo.')
  const g = new dagre.graphlib.Graph({ multigraph: true })
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of l.nodes) g.setNode(n.key, { width: W, height: H })
  l.edges.forEach((e, i) => g.setEdge(e.from, e.to, { label: e.relation, width: 60, height: 14 }, `e${i}`))
  dagre.layout(g)
  const gr = g.graph()
  const width = Math.ceil(gr.width ?? 0), height = Math.ceil(gr.height ?? 0)
  const root = svg('svg', { class: 'lineage', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `lineage of ${l.focus}` })
  const defs = svg('defs')
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' })
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#71717a' }))
  defs.append(marker)
  root.append(defs)
  for (const e of g.edges()) {
    const ed = g.edge(e) as { points: Array<{ x: number; y: number }>; x: number; y: number; label: string }
    root.append(svg('path', { d: ed.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' '), class: 'edge', 'marker-end': 'url(#arrow)' }))
    const t = svg('text', { x: ed.x, y: ed.y + 4, class: 'edge-label', 'text-anchor': 'middle' })
    t.textContent = ed.label
    root.append(t)
  }
  for (const n of l.nodes) {
    const p = g.node(n.key) as { x: number; y: number }
    const cls = `node${n.key === l.focus ? ' focus' : ''}${n.missing ? ' missing' : ''}${n.sealOk === false ? ' bad' : ''}`
    const a = svg('a', { href: modelHref(n.key), class: cls, 'data-ref': n.key })
    a.append(svg('rect', { x: p.x - W / 2, y: p.y - H / 2, width: W, height: H, rx: 6 }))
    const t = svg('text', { x: p.x, y: p.y + 4, 'text-anchor': 'middle' })
    t.textContent = n.key.length > 30 ? `…${n.key.slice(-29)}` : n.key
    const title = svg('title'); title.textContent = `${n.key}\n${n.seal}${n.missing ? '\nnot in this zoo' : ''}${n.sealOk === false ? '\nmanifest does not match its seal' : ''}`
    a.append(t, title)
    if (n.missing) a.removeAttribute('href')
    root.append(a)
  }
  const box = h('div', { class: 'lineage-box' })
  box.append(root)
  if (l.problems.length) box.append(h('ul', { class: 'error' }, ...l.problems.map((p) => h('li', {}, `${p.model}: ${p.problem}`))))
  return box
}
