/**
 * The non-weight half of `git zoo diff`: generating factors (seed, dataset, arch, params), metrics,
 * the config snapshot (key by key when both are JSON), files, ONNX signatures and parents.
 */
import type { Json, Manifest } from '../manifest/manifest.js'

export interface FieldChange { key: string; a?: Json; b?: Json }

export interface MetadataDiff {
  factors: FieldChange[]
  metrics: Array<{ key: string; a?: number; b?: number; delta?: number }>
  config: { same: boolean; a?: string; b?: string; changes?: FieldChange[] }
  files: { same: string[]; changed: string[]; only_a: string[]; only_b: string[] }
  onnx: Array<{ path: string; changes: FieldChange[] }>
  parents: { a: string[]; b: string[] }
}

function eq(a: unknown, b: unknown): boolean { return JSON.stringify(a) === JSON.stringify(b) }

/** Flatten nested objects to dotted keys (arrays stay values). */
export function flatten(v: unknown, prefix = '', out: Record<string, Json> = {}, depth = 0): Record<string, Json> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 16) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flatten(x, prefix ? `${prefix}.${k}` : k, out, depth + 1)
  } else {
    out[prefix] = v as Json
  }
  return out
}

function changes(a: Record<string, Json>, b: Record<string, Json>, prefix = ''): FieldChange[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  const out: FieldChange[] = []
  for (const k of keys) {
    if (eq(a[k], b[k])) continue
    out.push({ key: prefix + k, ...(k in a ? { a: a[k] } : {}), ...(k in b ? { b: b[k] } : {}) })
  }
  return out
}

/** `configs`: the two config snapshots' text, when present in the working tree. */
export function diffMetadata(a: Manifest, b: Manifest, configs: { a?: string; b?: string } = {}): MetadataDiff {
  const factor = (m: Manifest): Record<string, Json> => {
    const o: Record<string, Json> = {}
    if (m.seed !== undefined) o.seed = m.seed
    if (m.dataset !== undefined) o.dataset = m.dataset
    if (m.arch !== undefined) o.arch = m.arch
    for (const [k, v] of Object.entries(m.params)) o[`params.${k}`] = v
    return o
  }
  const metrics: MetadataDiff['metrics'] = []
  for (const k of [...new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])].sort()) {
    const x = a.metrics[k], y = b.metrics[k]
    if (x === y) continue
    metrics.push({ key: k, ...(x !== undefined ? { a: x } : {}), ...(y !== undefined ? { b: y } : {}), ...(x !== undefined && y !== undefined ? { delta: y - x } : {}) })
  }
  const config: MetadataDiff['config'] = { same: a.config?.sha256 === b.config?.sha256, ...(a.config ? { a: a.config.sha256 } : {}), ...(b.config ? { b: b.config.sha256 } : {}) }
  if (!config.same && configs.a !== undefined && configs.b !== undefined) {
    try { config.changes = changes(flatten(JSON.parse(configs.a)), flatten(JSON.parse(configs.b))) } catch { /* not JSON: digests only */ }
  }
  const fa = new Map(a.files.map((f) => [f.path, f])), fb = new Map(b.files.map((f) => [f.path, f]))
  const files: MetadataDiff['files'] = { same: [], changed: [], only_a: [], only_b: [] }
  for (const [p, f] of fa) {
    const g = fb.get(p)
    if (!g) files.only_a.push(p)
    else (f.sha256 === g.sha256 ? files.same : files.changed).push(p)
  }
  for (const p of fb.keys()) if (!fa.has(p)) files.only_b.push(p)
  const onnx: MetadataDiff['onnx'] = []
  for (const [p, f] of fa) {
    const g = fb.get(p)
    if (!g || f.onnx === undefined || g.onnx === undefined) continue
    const c = changes(flatten(f.onnx), flatten(g.onnx))
    if (c.length) onnx.push({ path: p, changes: c })
  }
  const parents = (m: Manifest): string[] => m.parents.map((p) => `${p.relation} of ${p.name}@v${p.version}`)
  return { factors: changes(factor(a), factor(b)), metrics, config, files, onnx, parents: { a: parents(a), b: parents(b) } }
}
