/**
 * Plots: uPlot for lines over epochs (interactive: hover values, drag to zoom, click a legend entry
 * to hide a series) and a scatter of our own on a canvas. uPlot's scatter mode leaves drawing the
 * points and finding the one under the mouse to the caller (its examples bring a quadtree and a
 * path builder); with both ours anyway, one canvas pass draws 50,000 points in a few milliseconds
 * and a grid answers clicks.
 */
import uPlot from 'uplot'
import { h } from './dom.js'

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#9333ea', '#ea580c']

export interface Line { label: string; values: Array<number | null>; color?: string; dash?: boolean }

/** Lines over a shared x axis (epochs). */
export function linePlot(xs: number[], lines: Line[], o: { width?: number; height?: number; xLabel?: string; yLabel?: string; bands?: Array<[number, number]> } = {}): HTMLElement {
  const box = h('div', { class: 'plot' })
  const opts: uPlot.Options = {
    width: o.width ?? 720, height: o.height ?? 260,
    scales: { x: { time: false } },
    axes: [{ label: o.xLabel ?? 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { label: o.yLabel ?? '', size: 60 }],
    series: [{ label: o.xLabel ?? 'epoch' }, ...lines.map((l, i) => ({
      label: l.label, stroke: l.color ?? PALETTE[i % PALETTE.length], width: 2, spanGaps: true,
      ...(l.dash ? { dash: [6, 4] } : {}),
    }))],
    ...(o.bands ? { bands: o.bands.map(([a, b]) => ({ series: [a, b] as [number, number], fill: 'rgba(37,99,235,0.12)' })) } : {}),
    legend: { live: true },
  }
  const data = [xs, ...lines.map((l) => l.values)] as uPlot.AlignedData
  // uPlot measures its container: build it once the box is in the page
  requestAnimationFrame(() => { new uPlot(opts, data, box) })
  return box
}

export interface ScatterData {
  x: Float64Array | number[]
  y: Float64Array | number[]
  /** Colour index per point (-1: none), with the legend's names, or a numeric value per point. */
  color?: { kind: 'category'; codes: Int32Array; names: string[] } | { kind: 'number'; values: Float64Array | number[] }
  rows: number[]
  /** Log-10 axes (points at or below zero are left out). */
  logX?: boolean
  logY?: boolean
  xLabel: string
  yLabel: string
  onPick(row: number): void
  label(row: number): string
}

/** A scatter of every point on one canvas; hovering names a point, clicking one picks it. */
export function scatterPlot(d: ScatterData, width = 760, height = 440): HTMLElement {
  const dpr = window.devicePixelRatio || 1
  const canvas = h('canvas', { class: 'scatter', width: width * dpr, height: height * dpr, 'data-points': 0 })
  canvas.style.width = `${width}px`; canvas.style.height = `${height}px`
  const tip = h('div', { class: 'tip' })
  const legend = h('div', { class: 'legend' })
  const wrap = h('div', { class: 'scatter-wrap' }, canvas, tip, legend)
  const ctx = canvas.getContext('2d')!
  ctx.scale(dpr, dpr)
  const pad = { l: 64, r: 30, t: 10, b: 40 }
  const idx: number[] = []
  const tx = (v: number): number => (d.logX ? (v > 0 ? Math.log10(v) : NaN) : v)
  const ty = (v: number): number => (d.logY ? (v > 0 ? Math.log10(v) : NaN) : v)
  const X = Float64Array.from(d.x, tx), Y = Float64Array.from(d.y, ty)
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity
  for (let j = 0; j < d.rows.length; j++) {
    const x = X[j]!, y = Y[j]!
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue
    idx.push(j)
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y
  }
  canvas.dataset.points = String(idx.length)
  if (!idx.length) { x0 = 0; x1 = 1; y0 = 0; y1 = 1 }
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5 }
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5 }
  const W = width - pad.l - pad.r, H = height - pad.t - pad.b
  canvas.dataset.area = `${pad.l},${pad.t},${W},${H}` // the plotting rectangle in CSS pixels (x, y, width, height)
  // a factor with few values (a grid of learning rates) would pile its points on a few lines:
  // spread them sideways a little, by a hash of the point (the same on every draw), inside the axes
  const xs = new Set<number>()
  for (const j of idx) { xs.add(X[j]!); if (xs.size > 24) break }
  const jitter = idx.length > 50 && xs.size <= 24 ? (xs.size > 1 ? (W / xs.size) * 0.35 : W * 0.1) : 0
  const jx = Float64Array.from(X, (_, j) => ((((j * 2654435761) >>> 0) % 1000) / 1000 - 0.5) * jitter)
  const px = (x: number): number => pad.l + jitter / 2 + ((x - x0) / (x1 - x0)) * (W - jitter)
  const py = (y: number): number => pad.t + H - ((y - y0) / (y1 - y0)) * H
  // axes and ticks
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, width, height)
  ctx.strokeStyle = '#d4d4d8'; ctx.fillStyle = '#52525b'; ctx.font = '11px system-ui, sans-serif'
  const label = (v: number, log?: boolean): string => tick(log ? 10 ** v : v)
  for (let i = 0; i <= 5; i++) {
    const gx = x0 + ((x1 - x0) * i) / 5, gy = y0 + ((y1 - y0) * i) / 5
    ctx.beginPath(); ctx.moveTo(px(gx), pad.t); ctx.lineTo(px(gx), pad.t + H); ctx.moveTo(pad.l, py(gy)); ctx.lineTo(pad.l + W, py(gy)); ctx.stroke()
    ctx.textAlign = 'center'; ctx.fillText(label(gx, d.logX), px(gx), pad.t + H + 14)
    ctx.textAlign = 'right'; ctx.fillText(label(gy, d.logY), pad.l - 6, py(gy) + 4)
  }
  ctx.textAlign = 'center'; ctx.fillText(`${d.xLabel}${d.logX ? ' (log)' : ''}`, pad.l + W / 2, height - 6)
  ctx.save(); ctx.translate(12, pad.t + H / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(`${d.yLabel}${d.logY ? ' (log)' : ''}`, 0, 0); ctx.restore()
  const sx = (j: number): number => px(X[j]!) + jx[j]!, sy = (j: number): number => py(Y[j]!)
  // points: one fillRect each, in a shuffled order so no colour hides another wholesale
  const colorOf = colorer(d, legend)
  const size = idx.length > 5000 ? 2 : 5
  const order = idx.slice().sort((a, b) => ((a * 2246822519) >>> 0) - ((b * 2246822519) >>> 0))
  ctx.globalAlpha = idx.length > 5000 ? 0.6 : 0.85
  let last = ''
  for (const j of order) {
    const c = colorOf(j)
    if (c !== last) { ctx.fillStyle = c; last = c }
    ctx.fillRect(sx(j) - size / 2, sy(j) - size / 2, size, size)
  }
  ctx.globalAlpha = 1
  // hit testing: points bucketed on an 8-pixel grid
  const CELL = 8
  const grid = new Map<number, number[]>()
  for (const j of idx) { const k = Math.floor(sx(j) / CELL) * 4096 + Math.floor(sy(j) / CELL); let l = grid.get(k); if (!l) grid.set(k, l = []); l.push(j) }
  const nearest = (ev: MouseEvent): number | undefined => {
    const rect = canvas.getBoundingClientRect()
    const mx = ev.clientX - rect.left, my = ev.clientY - rect.top
    let best: number | undefined, bd = 7 * 7
    const cx = Math.floor(mx / CELL), cy = Math.floor(my / CELL)
    for (let a = cx - 1; a <= cx + 1; a++) for (let b = cy - 1; b <= cy + 1; b++) {
      for (const j of grid.get(a * 4096 + b) ?? []) { const dx = sx(j) - mx, dy = sy(j) - my, dd = dx * dx + dy * dy; if (dd <= bd) { bd = dd; best = j } }
    }
    return best
  }
  canvas.addEventListener('mousemove', (ev) => {
    const j = nearest(ev)
    canvas.style.cursor = j === undefined ? 'default' : 'pointer'
    tip.textContent = j === undefined ? '' : `${d.label(d.rows[j]!)}  (${tick(d.x[j]!)}, ${tick(d.y[j]!)})`
  })
  canvas.addEventListener('click', (ev) => { const j = nearest(ev); if (j !== undefined) d.onPick(d.rows[j]!) })
  return wrap
}

function tick(v: number): string {
  const a = Math.abs(v)
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(3)))
}

function colorer(d: ScatterData, legend: HTMLElement): (j: number) => string {
  const c = d.color
  if (!c) return () => PALETTE[0]!
  if (c.kind === 'category') {
    legend.append(...c.names.slice(0, PALETTE.length).map((n, i) => h('span', {}, h('i', { style: `background:${PALETTE[i]}` }), n)))
    if (c.names.length > PALETTE.length) legend.append(h('span', {}, h('i', { style: 'background:#a1a1aa' }), `${c.names.length - PALETTE.length} more`))
    return (j) => { const k = c.codes[j]!; return k < 0 ? '#a1a1aa' : k < PALETTE.length ? PALETTE[k]! : '#a1a1aa' }
  }
  let lo = Infinity, hi = -Infinity
  for (const v of c.values) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v }
  legend.append(h('span', {}, h('i', { class: 'ramp' }), `${tick(lo)} … ${tick(hi)}`))
  return (j) => {
    const v = c.values[j]!
    if (!Number.isFinite(v)) return '#a1a1aa'
    const t = hi > lo ? (v - lo) / (hi - lo) : 0.5
    return `hsl(${Math.round(240 - 240 * t)}, 75%, 45%)`
  }
}
