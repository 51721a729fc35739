/**
 * `--limit` with `--sort` keeps only the first rows of the order while reading (src/catalog/query.ts):
 * on columns full of ties and missing values, numbers and text, every limit gives exactly the first
 * rows of the full sort.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ColumnSet, CatalogFile, encodeCatalog, PART_HEAD } from '../src/catalog/columns.js'
import { runQuery, parseSort } from '../src/catalog/query.js'

test('a sorted query with a limit gives the first rows of the full sort, ties and missing values included', () => {
  const n = 400
  const cols = new ColumnSet(n)
  let seed = 7
  const r = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
  for (let i = 0; i < n; i++) {
    cols.addRow()
    cols.setStr('name', i, `m/${String(i).padStart(4, '0')}`)
    cols.setNum('version', i, 1)
    if (r() < 0.8) cols.setNum('m:acc', i, Math.floor(r() * 20) / 20) // many ties
    if (r() < 0.7) cols.setNum('m:loss', i, r())
    if (r() < 0.9) cols.setStr('dataset', i, ['a', 'b', 'c'][Math.floor(r() * 3)]!)
  }
  const c = CatalogFile.fromBytes(encodeCatalog(cols, PART_HEAD(false)))
  for (const sort of ['-metrics.acc', 'metrics.acc,-metrics.loss', 'dataset,-metrics.acc', '-dataset,metrics.loss,name']) {
    const all = runQuery(c, { filters: [], sort: parseSort(sort) }).rows
    assert.equal(all.length, n)
    for (const limit of [0, 1, 2, 7, 10, 50, 99, 100, 101, 399, 400, 500]) {
      const got = runQuery(c, { filters: [], sort: parseSort(sort), limit })
      assert.deepEqual(got.rows, all.slice(0, limit), `--sort ${sort} --limit ${limit}`)
      assert.equal(got.total, n)
    }
  }
})
