/**
 * How one manifest's facts become cells of the column set (names of columns in spec/catalog.md):
 *   path name seal created promoter params parents blob      plain strings
 *   dataset arch relations p:<key> (non-numeric params)      dictionary strings
 *   version seed files size checkpoints epochs p:<key>       numbers
 *   m:<metric> (final) max:<metric> min:<metric>             numbers over history and final
 *   h:<metric>:<epoch>                                       the history, epochs 0..HISTORY_EPOCHS-1
 *   st:mtime st:size st:ino                                  the manifest file's stat (worktree mode)
 */
import type { ColumnSet } from './columns.js'
import type { CatalogRow } from './extract.js'

/** `<metric>@<epoch>` is indexed for epochs below this (later epochs still count for best/min/max). */
export const HISTORY_EPOCHS = 256

export interface FileFacts { blob?: string; mtime?: number; size?: number; ino?: number }

export function paramText(v: unknown): string { return typeof v === 'string' ? v : JSON.stringify(v) }

export function putRow(cols: ColumnSet, i: number, row: CatalogRow, facts: FileFacts = {}): void {
  cols.setStr('path', i, row.path)
  cols.setStr('name', i, row.name)
  cols.setStr('seal', i, row.seal)
  cols.setNum('version', i, row.version)
  if (row.seed !== undefined) cols.setNum('seed', i, row.seed)
  if (row.dataset !== undefined) cols.setStr('dataset', i, row.dataset)
  if (row.arch !== undefined) cols.setStr('arch', i, row.arch)
  if (row.created !== undefined) cols.setStr('created', i, row.created)
  if (row.promoter !== undefined) cols.setStr('promoter', i, row.promoter)
  cols.setNum('files', i, row.files)
  cols.setNum('size', i, row.size)
  cols.setNum('checkpoints', i, row.checkpoints)
  cols.setNum('epochs', i, row.history.length)
  cols.setStr('params', i, JSON.stringify(row.params))
  cols.setStr('parents', i, JSON.stringify(row.parents))
  if (row.parents.length) cols.setStr('relations', i, [...new Set(row.parents.map((p) => p.relation))].sort().join(','))
  for (const [k, v] of Object.entries(row.params)) {
    if (typeof v === 'number') cols.setNum(`p:${k}`, i, v)
    else cols.setStr(`p:${k}`, i, paramText(v))
  }
  const max = new Map<string, number>(), min = new Map<string, number>()
  const see = (k: string, v: number): void => {
    const a = max.get(k); if (a === undefined || v > a) max.set(k, v)
    const b = min.get(k); if (b === undefined || v < b) min.set(k, v)
  }
  for (const [k, v] of Object.entries(row.metrics)) { cols.setNum(`m:${k}`, i, v); see(k, v) }
  row.history.forEach((h, pos) => {
    const e = Number.isSafeInteger(h.epoch) && h.epoch! >= 0 ? h.epoch! : pos
    for (const [k, v] of Object.entries(h)) {
      if (k === 'epoch') continue
      see(k, v)
      if (e < HISTORY_EPOCHS) cols.setNum(`h:${k}:${e}`, i, v)
    }
  })
  for (const [k, v] of max) cols.setNum(`max:${k}`, i, v)
  for (const [k, v] of min) cols.setNum(`min:${k}`, i, v)
  if (facts.blob) cols.setStr('blob', i, facts.blob)
  if (facts.mtime !== undefined) cols.setNum('st:mtime', i, facts.mtime)
  if (facts.size !== undefined) cols.setNum('st:size', i, facts.size)
  if (facts.ino !== undefined) cols.setNum('st:ino', i, facts.ino)
}
