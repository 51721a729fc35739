/**
 * Reading metrics files: a JSON object of final values, a JSON list of per-epoch records, JSON lines,
 * or CSV with a header row. Per-epoch input gives `history` (ordered by epoch) and final `metrics`
 * (the last record's values, without `epoch`).
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { UsageError } from '../errors.js'

export interface MetricsRead { metrics: Record<string, number>; history?: Array<Record<string, number>> }

function numericRecord(rec: unknown, where: string): Record<string, number> {
  if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw new UsageError(`${where} is not an object of numbers`, 'E_METRICS')
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(rec as Record<string, unknown>)) {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isFinite(n)) continue // non-numeric columns (names, notes) are not metrics
    out[k] = n
  }
  return out
}

function fromRecords(records: unknown[], file: string): MetricsRead {
  const history = records.map((r, i) => numericRecord(r, `${file} record ${i + 1}`))
  if (history.length === 0) return { metrics: {} }
  if (history.every((h) => 'epoch' in h)) history.sort((a, b) => a.epoch! - b.epoch!)
  const { epoch: _e, ...last } = history[history.length - 1]!
  return { metrics: last, history }
}

/** CSV with a header row (RFC 4180: quoted cells may hold commas, quotes and newlines), by csv-parse. */
function parseCsv(text: string, file: string): unknown[] {
  // loaded on first use: every `add` reaches this module, few read a CSV (csv-parse is 12 modules)
  const { parse } = createRequire(import.meta.url)('csv-parse/sync') as typeof import('csv-parse/sync')
  try {
    return parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as unknown[]
  } catch (err) {
    throw new UsageError(`${file} is not valid CSV: ${(err as Error).message}; metrics are a JSON object, a JSON list, JSON lines or CSV with a header row`, 'E_METRICS', { file }, { cause: err })
  }
}

export function parseMetrics(text: string, file: string): MetricsRead {
  const trimmed = text.trim()
  if (trimmed === '') return { metrics: {} }
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let v: unknown
    try { v = JSON.parse(trimmed) } catch {
      // JSON lines
      return fromRecords(trimmed.split(/\r?\n/).filter((l) => l.trim()).map((l, i) => {
        try { return JSON.parse(l) } catch { throw new UsageError(`${file} line ${i + 1} is not JSON; metrics are a JSON object, a JSON list, JSON lines or CSV`, 'E_METRICS') }
      }), file)
    }
    if (Array.isArray(v)) return fromRecords(v, file)
    const obj = v as Record<string, unknown>
    // {"history": [...]} or {"epochs": [...]} with optional finals
    for (const key of ['history', 'epochs']) {
      if (Array.isArray(obj[key])) {
        const r = fromRecords(obj[key] as unknown[], file)
        const { [key]: _h, ...rest } = obj
        return { metrics: { ...r.metrics, ...numericRecord(rest, file) }, history: r.history }
      }
    }
    return { metrics: numericRecord(obj, file) }
  }
  return fromRecords(parseCsv(trimmed, file), file)
}

export async function readMetrics(path: string): Promise<MetricsRead> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (err) {
    throw new UsageError(`cannot read metrics file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'E_METRICS', {}, { cause: err })
  }
  return parseMetrics(text, path)
}
