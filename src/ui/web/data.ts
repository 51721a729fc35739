/**
 * Where the app's data comes from: the live server (`/api/...`) or a static export (`data/...`),
 * and the catalog's columns as an object the catalog's own query code (src/catalog/query.ts, the
 * code behind `git zoo find`) runs on, so a filter typed here means what it means in the terminal.
 */
import type { CatalogFile } from '../../catalog/columns.js'
import type { AppInfo, CatalogPayload, DiffPayload, ModelPayload } from '../shapes.js'
import type { LogEntry } from '../../promote/log.js'

/** The token the server printed (`?token=` in the page's URL), sent with every request. */
const token = new URLSearchParams(location.search).get('token')
const withToken = (url: string): string => (token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url)

async function get(url: string): Promise<Response> {
  const r = await fetch(withToken(url))
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`
    try { msg = ((await r.json()) as { error?: string }).error ?? msg } catch { /* not JSON */ }
    throw new Error(msg)
  }
  return r
}
const getJson = async <T>(url: string): Promise<T> => (await get(url)).json() as Promise<T>

/** Model names are lower-case segments joined by `/`: each maps to a folder of the export. */
export const modelKey = (name: string, version: number): string => `${name}@v${version}`
const exportPath = (ref: string): string => { const at = ref.lastIndexOf('@v'); return `data/models/${ref.slice(0, at)}/v${ref.slice(at + 2)}.json` }

export interface Source {
  info: AppInfo
  catalog(): Promise<{ json: CatalogPayload; bin: ArrayBuffer }>
  /** A metric's history columns: every epoch, or one (live only; a static export sends every epoch). */
  history(metric: string, id: string, epoch?: number): Promise<{ bytes: Float64Array; epoch?: number }>
  /** A string column the catalog document lists as lazy. */
  column(col: string, id: string): Promise<Array<string | null>>
  model(ref: string): Promise<ModelPayload>
  /** Live only (the static export has no weights reader). */
  diff?(a: string, b: string): Promise<DiffPayload>
  log(): Promise<LogEntry[]>
  /** A link that downloads a file (live), or undefined when the file must be assembled from the remote. */
  fileUrl(ref: string, path: string): string | undefined
}

/** The data source of this page; with `prefetch`, the catalog's fetch starts before anything else waits. */
export async function openSource(prefetch: boolean): Promise<Source> {
  // the export writes content="static" into its index.html
  const isStatic = document.querySelector('meta[name="zoo-mode"]')?.getAttribute('content') === 'static'
  const historyOf = async (url: string): Promise<Float64Array> => new Float64Array(await (await get(url)).arrayBuffer())
  let catalog: Promise<{ json: CatalogPayload; bin: ArrayBuffer }> | undefined
  const src: Omit<Source, 'info'> = isStatic ? {
    catalog: () => catalog ??= (async () => {
      const [json, bin] = await Promise.all([getJson<CatalogPayload>('data/catalog.json'), get('data/catalog.bin').then((r) => r.arrayBuffer())])
      return { json, bin }
    })(),
    history: async (metric) => ({ bytes: await historyOf(`data/history/${encodeURIComponent(metric)}.f64`) }),
    column: (col) => getJson(`data/columns/${encodeURIComponent(col)}.json`),
    model: (ref) => getJson(exportPath(ref)),
    log: async () => (await getJson<{ entries: LogEntry[] }>('data/log.json')).entries,
    fileUrl: () => undefined,
  } : {
    catalog: () => catalog ??= (async () => {
      // both parts at once; if the zoo changed between the two answers, the binary part again for this id
      const [json, binReply] = await Promise.all([getJson<CatalogPayload>('api/catalog'), get('api/catalog.bin')])
      const bin = binReply.headers.get('X-Catalog-Id') === json.id ? binReply.arrayBuffer() : get(`api/catalog.bin?id=${json.id}`).then((r) => r.arrayBuffer())
      return { json, bin: await bin }
    })(),
    history: async (metric, id, epoch) => ({ bytes: await historyOf(`api/history?metric=${encodeURIComponent(metric)}&id=${id}${epoch === undefined ? '' : `&epoch=${epoch}`}`), ...(epoch === undefined ? {} : { epoch }) }),
    column: (col, id) => getJson(`api/column?col=${encodeURIComponent(col)}&id=${encodeURIComponent(id)}`),
    model: (ref) => getJson(`api/model?m=${encodeURIComponent(ref)}`),
    diff: (a, b) => getJson(`api/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`),
    log: async () => (await getJson<{ entries: LogEntry[] }>('api/log')).entries,
    fileUrl: (ref, path) => withToken(`api/file?m=${encodeURIComponent(ref)}&path=${encodeURIComponent(path)}`),
  }
  if (prefetch) src.catalog().catch(() => {}) // its error is reported by the page that waits for it
  const info = await getJson<AppInfo>(isStatic ? 'data/info.json' : 'api/info')
  return { ...src, info }
}

/**
 * The catalog's columns in the browser, answering the calls src/catalog/query.ts makes on a
 * CatalogFile (count, has, sectionNames, numColumns, hasNum, f64, dict, str, latest, current,
 * retired). History columns are added per metric when a filter or plot needs them.
 */
export class BrowserCatalog {
  readonly count: number
  readonly id: string
  /** Manifests the catalog could not index (`git zoo verify` names the problem). */
  readonly problems: CatalogPayload['problems']
  /** String columns not loaded yet (CatalogPayload.lazy). */
  readonly lazy: Set<string>
  private num = new Map<string, Float64Array>()
  private strs = new Map<string, Array<string | null>>()
  private dicts = new Map<string, { codes: Uint32Array; values: string[] }>()
  private u8 = new Map<string, Uint8Array>()
  /** Metric -> epochs whose history columns exist (loaded or not). */
  readonly history: Record<string, number[]>
  private loaded = new Set<string>()

  constructor(p: CatalogPayload, bin: ArrayBuffer) {
    this.count = p.count
    this.id = p.id
    this.problems = p.problems
    this.lazy = new Set(p.lazy)
    const n = p.count
    for (const s of p.sections) {
      if (s.type === 'u8') this.u8.set(s.col, new Uint8Array(bin, s.offset, n))
      else if (s.type === 'u32') this.dicts.set(s.col.slice('dict:'.length), { codes: new Uint32Array(bin, s.offset, n), values: p.dicts[s.col.slice('dict:'.length)] ?? [] })
      else if (s.type === 'f64') this.num.set(s.col, new Float64Array(bin, s.offset, n))
      else this.num.set(s.col, Float64Array.from(new Float32Array(bin, s.offset, n)))
    }
    for (const [k, a] of Object.entries(p.str)) this.strs.set(k, a)
    const retired = new Uint8Array(p.count)
    const r = this.num.get('retired')
    if (r) for (let i = 0; i < p.count; i++) if (r[i] === 1) retired[i] = 1
    this.u8.set('retired', retired)
    this.history = p.history
  }

  /** Add a metric's history columns (bytes as /api/history sends them: every epoch, or the one asked for). */
  addHistory(metric: string, bytes: Float64Array, epoch?: number): void {
    const epochs = epoch === undefined ? this.history[metric] ?? [] : [epoch]
    epochs.forEach((e, j) => this.num.set(`h:${metric}:${e}`, bytes.subarray(j * this.count, (j + 1) * this.count)))
    if (epoch === undefined) this.loaded.add(metric)
  }
  hasHistory(metric: string, epoch?: number): boolean { return this.loaded.has(metric) || (epoch !== undefined && this.num.has(`h:${metric}:${epoch}`)) }
  addColumn(col: string, values: Array<string | null>): void { this.strs.set(col, values); this.lazy.delete(col) }

  sectionNames(): string[] {
    const out = [...this.num.keys()].map((k) => `f64:${k}`)
    for (const [m, es] of Object.entries(this.history)) if (!this.loaded.has(m)) for (const e of es) if (!this.num.has(`h:${m}:${e}`)) out.push(`f64:h:${m}:${e}`)
    out.push(...[...this.strs.keys(), ...this.lazy].map((k) => `str:${k}`), ...[...this.dicts.keys()].map((k) => `dict:${k}`))
    return out
  }
  has(section: string): boolean {
    const at = section.indexOf(':')
    const kind = section.slice(0, at), col = section.slice(at + 1)
    if (kind === 'f64') return this.hasNum(col)
    if (kind === 'str') return this.strs.has(col) || this.lazy.has(col)
    if (kind === 'dict') return this.dicts.has(col)
    if (kind === 'u8') return this.u8.has(col)
    return false
  }
  numColumns(): string[] { return this.sectionNames().filter((s) => s.startsWith('f64:')).map((s) => s.slice(4)) }
  hasNum(col: string): boolean {
    if (this.num.has(col)) return true
    const h = /^h:(.+):(\d+)$/.exec(col)
    return Boolean(h && this.history[h[1]!]?.includes(Number(h[2])))
  }
  f64(col: string): Float64Array | undefined { return this.num.get(col) }
  dict(col: string): { codes: Uint32Array; values: string[] } | undefined { return this.dicts.get(col) }
  str(col: string, row: number): string | undefined {
    const d = this.dicts.get(col)
    if (d) { const c = d.codes[row] ?? 0; return c === 0 ? undefined : d.values[c - 1] }
    const v = this.strs.get(col)?.[row]
    return v === null || v === undefined || v === '' ? undefined : v
  }
  latest(): Uint8Array { return this.u8.get('latest')! }
  current(): Uint8Array { return this.u8.get('current')! }
  retired(): Uint8Array { return this.u8.get('retired')! }

  /** This object where the query code expects the catalog file (it calls only the methods above). */
  asCatalog(): CatalogFile { return this as unknown as CatalogFile }
}
