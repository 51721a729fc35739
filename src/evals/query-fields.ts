/**
 * Fields of `find`/`ls` that do not come from the manifests, so the catalog cache does not hold
 * them (spec/catalog.md, "Stages and evaluations"): they are read when a query names them.
 *   stage                    the stages naming the version (set-valued: = != ~)
 *   eval.<metric>            the metric of the version's latest evaluation record (by `created`)
 *   eval[<data>].<metric>    the metric of its latest evaluation on data <data>: the data's name as
 *                            recorded (e.g. test.npz) or a prefix (8+ hex digits) of its sha256
 * Evaluation records are read per row, only for rows the query looks at, and count when they name
 * the row's seal and carry finite metrics (`git zoo show` checks them in full).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MODELS_DIR, EVALS_DIR } from '../manifest/names.js'
import { UsageError } from '../errors.js'
import { matcher } from '../catalog/query.js'

type Op = '=' | '!=' | '<' | '<=' | '>' | '>=' | '~'

/** A field as the catalog's queries take it (src/catalog/query.ts, Field). */
export interface QueryField {
  name: string
  numeric: boolean
  get(row: number): number | string | undefined
  test?(row: number, op: Op, value: string): boolean
}

/** What the fields need to know about a catalog row. */
export interface RowInfo { name(row: number): string; version(row: number): number; seal(row: number): string }

export function isZooField(field: string): boolean {
  return field === 'stage' || /^eval(\[[^\]]+\])?\./.test(field)
}

interface LightEval { data: string; dataSha: string; created: string; metrics: Record<string, number> }

/**
 * Where the fields come from: the work tree's top folder (evaluation records) and the stages naming
 * each version, by `name@vN` (src/catalog/stages.ts reads them, cached by the state of the refs).
 */
export interface ZooSource { root: string; stagesByVersion(): Promise<Map<string, string[]>> }

/**
 * The resolver of stage and eval fields for the rows of one catalog. Stages are read once when the
 * query names `stage` or `withStages` is set.
 */
export async function zooFields(zoo: ZooSource, rows: RowInfo, fields: string[], withStages = false): Promise<{ resolve: (field: string) => QueryField | undefined; stagesOf: (row: number) => string[] }> {
  const stageMap = withStages || fields.includes('stage') ? await zoo.stagesByVersion() : new Map<string, string[]>()
  const stagesOf = (i: number): string[] => stageMap.get(`${rows.name(i)}@v${rows.version(i)}`) ?? []
  const evalCache = new Map<number, LightEval[]>()
  const evalsOf = (i: number): LightEval[] => {
    let list = evalCache.get(i)
    if (list) return list
    list = []
    const dir = join(zoo.root, MODELS_DIR, rows.name(i), `v${rows.version(i)}`, EVALS_DIR)
    let names: string[] = []
    try { names = readdirSync(dir) } catch { /* no evaluations */ }
    for (const n of names.sort()) {
      if (!n.endsWith('.json')) continue
      try {
        const r = JSON.parse(readFileSync(join(dir, n), 'utf8')) as { model?: { seal?: unknown }; data?: { source?: unknown; sha256?: unknown }; created?: unknown; metrics?: Record<string, unknown> }
        if (r.model?.seal !== rows.seal(i) || typeof r.data?.sha256 !== 'string' || typeof r.created !== 'string' || !r.metrics) continue
        const metrics: Record<string, number> = {}
        for (const [k, v] of Object.entries(r.metrics)) if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v
        list.push({ data: String(r.data.source ?? ''), dataSha: r.data.sha256, created: r.created, metrics })
      } catch { /* unreadable records are not evaluations; `git zoo show` names them */ }
    }
    list.sort((a, b) => a.created.localeCompare(b.created))
    evalCache.set(i, list)
    return list
  }
  const resolve = (field: string): QueryField | undefined => {
    if (field === 'stage') {
      return {
        name: 'stage', numeric: false,
        get: (i) => stagesOf(i).join(',') || undefined,
        test: (i, op, v) => {
          const s = stagesOf(i)
          if (op === '=') return v === '' ? s.length === 0 : s.includes(v)
          if (op === '!=') return v === '' ? s.length > 0 : !s.includes(v)
          if (op === '~') { const m = matcher(v); return s.some(m) }
          throw new UsageError('stage takes =, != or ~ (e.g. stage=prod)', 'E_USAGE')
        },
      }
    }
    const m = /^eval(?:\[([^\]]+)\])?\.(.+)$/.exec(field)
    if (!m) return undefined
    const [, data, metric] = m as unknown as [string, string | undefined, string]
    const hex = data !== undefined && /^[0-9a-f]{8,64}$/.test(data)
    return {
      name: field, numeric: true,
      get: (i) => {
        const list = evalsOf(i)
        for (let j = list.length - 1; j >= 0; j--) {
          const e = list[j]!
          if (data !== undefined && e.data !== data && !(hex && e.dataSha.startsWith(data))) continue
          if (e.metrics[metric] !== undefined) return e.metrics[metric]
          if (data !== undefined || j === list.length - 1) return undefined
        }
        return undefined
      },
    }
  }
  return { resolve, stagesOf }
}
