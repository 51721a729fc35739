/**
 * The catalog's byte scanner (src/catalog/scan.ts) against the full parser (extractRow + putRow on
 * JSON.parse's reading): for every manifest the scanner takes, the cache bytes it leads to are the
 * full path's, byte for byte; what it declines, the full path reads (or refuses) instead. Tricky
 * values, layouts other than the canonical writer's, invalid JSON, and a few hundred random
 * manifests; then a hand-edited manifest through the CLI.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ColumnSet, encodeCatalog, PART_HEAD } from '../src/catalog/columns.js'
import { ManifestScanner } from '../src/catalog/scan.js'
import { extractRow } from '../src/catalog/extract.js'
import { putRow } from '../src/catalog/rows.js'
import { zoo, git, tempRepo } from './cli.js'

type Facts = { blob?: string; mtime?: number; size?: number; ino?: number }
interface Item { path: string; bytes: Buffer; retired?: boolean; facts?: Facts }

/** The cache bytes of the items read by the full path alone, and the problems it reports. */
function full(items: Item[]): { bytes: Buffer; problems: string[] } {
  const cols = new ColumnSet(items.length)
  const problems: string[] = []
  for (const it of items) {
    let row
    try { row = extractRow(it.path, it.bytes, false) } catch (err) { problems.push((err as Error).message); continue }
    if (it.retired) row.retired = true
    putRow(cols, cols.addRow(), row, false, it.facts ?? {})
  }
  return { bytes: encodeCatalog(cols, PART_HEAD(false)), problems }
}

/** The same through the scanner, with the full path for what it declines (as read.ts does). */
function scanned(items: Item[]): { bytes: Buffer; problems: string[]; declined: string[] } {
  const cols = new ColumnSet(items.length)
  const scanner = new ManifestScanner(cols)
  const problems: string[] = [], declined: string[] = []
  for (const it of items) {
    if (scanner.add(it.path, it.bytes, it.retired ?? false, it.facts ?? {})) continue
    declined.push(it.path)
    let row
    try { row = extractRow(it.path, it.bytes, false) } catch (err) { problems.push((err as Error).message); continue }
    if (it.retired) row.retired = true
    putRow(cols, cols.addRow(), row, false, it.facts ?? {})
  }
  return { bytes: encodeCatalog(cols, PART_HEAD(false)), problems, declined }
}

const pathOf = (name: string, version = 1): string => `models/${name}/v${version}/manifest.json`

function manifest(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    zoo: 1, name, version: 1, seed: 3, dataset: 'cifar10', arch: 'cnn-s',
    params: { lr: 0.001, optimizer: 'adam', bias: true, layers: [64, 64], sched: { kind: 'cos', warm: 5 }, none: null, off: false },
    metrics: { test_acc: 0.5520872473716736, loss: 1.25 },
    files: [{ path: 'c1/w.safetensors', size: 10, sha256: 'ab', epoch: 1 }, { path: 'c2/w.safetensors', size: 12, epoch: 2 }, { path: 'c2/o.pt', size: 5, epoch: 2, role: 'optimizer' }],
    parents: [], code: { commit: '0123', dirty: false }, promoter: 'A <a@b.c>', created: '2024-01-09T08:03:00.000Z', seal: 'bafyseal',
    ...extra,
  }
}

/** Layouts a manifest may come in: the canonical writer's, compact, and hand-edited ones. */
function layouts(m: unknown): Array<[string, Buffer]> {
  const pretty = JSON.stringify(m, null, 2) + '\n'
  return [
    ['canonical', Buffer.from(pretty)],
    ['compact', Buffer.from(JSON.stringify(m))],
    ['tabs and CRLF', Buffer.from(JSON.stringify(m, null, '\t').replace(/\n/g, '\r\n'))],
    ['odd spacing', Buffer.from(pretty.replace(/": /g, '"  :   ').replace(/,\n/g, ' ,\n\n').replace(/^\{/, '  \n {') + '\n\n  ')],
  ]
}

test('the scanner writes the full parser\'s cells for tricky values in every layout', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['plain', manifest('a/plain')],
    ['escapes and unicode', manifest('a/esc', {
      dataset: 'cifar"10\\x\n', arch: 'caf\u00e9 \u2615 \ud835\udd18', promoter: 'Zo\u00eb \u00abq\u00bb <z@e>', created: '2024\/01',
      params: { path: 'C:\\data\\set', tab: 'a\tb', quote: '"', uni: '\u00e9\u4e2d\ud83d\ude00', esc: '\u0001\u001f', slash: 'a/b', empty: '', 'cl\u00e9': 'non-ASCII key' },
    })],
    ['numbers', manifest('a/num', {
      seed: 0,
      params: { tiny: 1e-7, negzero: -0, big: 12345678901234567890, over53: 9007199254740993, e: 1.5e300, sub: 5e-324, min: 2.2250738585072014e-308, neg: -1.7976931348623157e308, c22: 1e22, c23: 1e23, frac: 0.30000000000000004, mid: 1234567.891, lead: 0.000001234, int: 42, negint: -7 },
      metrics: { a: 0.1, b: 1e-7, c: -0, d: 123456789012345680000, e: 3.4028234663852886e38, f: 0.5851967930793762, g: 1 },
    })],
    ['missing optional fields', (() => { const m = manifest('a/min'); for (const k of ['seed', 'dataset', 'arch', 'promoter', 'created', 'code']) delete m[k]; return m })()],
    ['population and parents', manifest('a/kid', {
      population: 'model-zoos/cifar10', parents: [
        { name: 'a/base', version: 2, seal: 'bafyb', relation: 'fine-tune', note: 'extra keys are ignored' },
        { name: 'a/other', version: 1, seal: 'bafyo', relation: 'soup' }, { name: 'a/third', version: 3, seal: 'bafyt', relation: 'fine-tune' }],
    })],
    ['format 2', manifest('a/f2', { zoo: 2, files: [{ path: 'config.json', size: 100 }], checkpoints: { node: 'bafynode', count: 51, files: 102, bytes: 1234567, epochs: [0, 50] } })],
    ['odd files', manifest('a/files', { files: [{ path: 'x', size: 1.5, epoch: 1 }, { path: 'y', size: '7', epoch: '1' }, 3, null, [1], { size: 2, epoch: -0 }, { size: 4, epoch: 0 }, { epoch: 1, size: 1e3 }] })],
    ['empty containers', manifest('a/empty', { params: {}, metrics: {}, files: [] })],
    ['keys the catalog skips', manifest('a/skip', { best: { test_acc: { value: 0.9, epoch: [1, { deep: [[], {}, ''] }] } }, history: [{ epoch: 0, loss: 2 }], config: { nested: { list: [true, false, null, -1.5e-3] } } })],
  ]
  for (const [what, m] of cases) {
    let first: Buffer | undefined
    for (const [layout, bytes] of layouts(m)) {
      const items = [{ path: pathOf(m.name as string), bytes, facts: { blob: 'b'.repeat(40) } }]
      const s = scanned(items)
      assert.deepEqual(s.declined, [], `${what}, ${layout}: the scanner reads it`)
      assert.deepEqual(s.problems, [])
      assert.ok(s.bytes.equals(full(items).bytes), `${what}, ${layout}: the same cells as the full parser`)
      // and the same in every layout (the compact one is read by JSON.parse alone)
      first ??= s.bytes
      assert.ok(s.bytes.equals(first), `${what}, ${layout}: the same cells as in the canonical layout`)
    }
  }
})

test('what the scanner declines is read by the full parser: the same rows, the same problems', () => {
  const ok = (name: string, text: string): Item => ({ path: pathOf(name), bytes: Buffer.from(text) })
  const base = JSON.stringify(manifest('d/x'), null, 2)
  const named = (name: string, text: string): Item => ok(name, text.replace('"d/x"', JSON.stringify(name)))
  const declinedButValid: Item[] = [
    // JSON.parse keeps the last of duplicated params; keys like array indexes come first in its objects
    named('d/dup', base.replace('"optimizer": "adam"', '"optimizer": "sgd", "optimizer": "adam"')),
    named('d/index', base.replace('"lr": 0.001', '"10": 1, "2": "two", "lr": 0.001')),
    named('d/proto', base.replace('"lr": 0.001', '"__proto__": 5, "lr": 0.001')),
    // "n\u0061me" is "name"; an escaped key elsewhere
    named('d/esckey', base.replace('"name":', '"n\\u0061me":')),
    named('d/escparam', base.replace('"optimizer":', '"opt\\u0069mizer":')),
    named('d/escname', base.replace('"d/x"', '"d\\/escname"')),
  ]
  const invalid: Item[] = [
    named('d/comma', base.replace('"loss": 1.25', '"loss": 1.25,')),
    named('d/ctrl', base.replace('cifar10', 'cifar\u000110')),
    named('d/quote', base.replace('"adam"', "'adam'")),
    named('d/cut', base.slice(0, base.length - 40)),
    named('d/after', base + ' x'),
    named('d/bom', '\ufeff' + base),
    named('d/badesc', base.replace('cifar10', 'cifar\\x10')),
    named('d/num', base.replace('0.001', '01')),
    named('d/num2', base.replace('0.001', '1.')),
    named('d/inf', base.replace('"loss": 1.25', '"loss": 1e400')),
    named('d/strmetric', base.replace('"loss": 1.25', '"loss": "1.25"')),
    ok('d/elsewhere', base), // names d/x, found at d/elsewhere
    named('d/v0', base.replace('"version": 1', '"version": 0')),
    named('d/seed', base.replace('"seed": 3', '"seed": 3.5')),
    named('d/noparents', base.replace('"parents": [],', '')),
    named('d/parent', base.replace('"parents": []', '"parents": [{ "name": "p", "version": 1, "seal": "s" }]')),
    named('d/ck', base.replace('"parents": []', '"checkpoints": { "count": 1, "files": 2 }, "parents": []')),
    named('d/params', base.replace('"params": {', '"params": [], "x": {')),
    named('d/empty', '{}'),
    named('d/list', '[]'),
  ]
  for (const it of [...declinedButValid, ...invalid]) {
    const s = scanned([it]), f = full([it])
    assert.deepEqual(s.declined, [it.path], `${it.path}: declined`)
    assert.deepEqual(s.problems, f.problems, it.path)
    assert.ok(s.bytes.equals(f.bytes), `${it.path}: the full parser's row`)
  }
  for (const it of declinedButValid) assert.deepEqual(full([it]).problems, [], `${it.path} is a valid manifest`)
  for (const it of invalid) assert.equal(full([it]).problems.length, 1, `${it.path} is refused`)
  // duplicated top-level keys and metrics: the last counts, as in JSON.parse, and the scanner takes them
  const dups = [
    // numbers as a hand would write them: -0, exponents, more digits than a double holds
    named('d/numtext', base.replace('"lr": 0.001', '"lr": -0, "lr2": -0.0e0, "big": 123456789012345678901234567890, "e": 1E+2, "f": 2.5e-3, "g": 0.1e1').replace('"loss": 1.25', '"loss": -0.0, "z": 1e-7')),
    named('d/twice', base.replace('"dataset": "cifar10"', '"dataset": "mnist", "dataset": "cifar10"').replace('"metrics": {', '"metrics": { "loss": 7 }, "metrics": {')),
    named('d/mdup', base.replace('"loss": 1.25', '"loss": 3, "loss": 1.25')),
  ]
  const s = scanned(dups)
  assert.deepEqual(s.declined, [])
  assert.ok(s.bytes.equals(full(dups).bytes))
})

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('a few hundred random manifests, mixed layouts, in one column set: the same cache bytes', () => {
  const r = rng(13)
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!
  const chars = ['a', 'b', 'Z', '0', ' ', '-', '/', '"', '\\', '\n', '\t', '\u00e9', '\u4e2d', '\ud83d\ude00', '\u0000', '\u007f']
  const text = (): string => Array.from({ length: Math.floor(r() * 8) }, () => pick(chars)).join('')
  const number = (): number => pick([
    () => Math.floor(r() * 1000), () => r(), () => -r() * 1e6, () => Math.fround(r()), () => r() * 10 ** Math.floor(r() * 40 - 20),
    () => Number.MAX_SAFE_INTEGER + Math.floor(r() * 10), () => -0, () => 1e-7, () => Math.floor(r() * 1e17),
  ])()
  const value = (depth = 0): unknown => pick<() => unknown>([
    number, text, () => true, () => null, () => false,
    () => (depth > 2 ? 1 : Array.from({ length: Math.floor(r() * 3) }, () => value(depth + 1))),
    () => (depth > 2 ? 'x' : Object.fromEntries(Array.from({ length: Math.floor(r() * 3) }, (_, j) => [`k${j}${text()}`, value(depth + 1)]))),
  ])()
  const keys = ['lr', 'opt', 'model::type', 'training::mode', 'dropout', 'cl\u00e9', 'a b', 'x'.repeat(40)]
  const items: Item[] = []
  for (let i = 0; i < 300; i++) {
    const name = `r/m${i}`
    const params: Record<string, unknown> = {}
    for (const k of keys) if (r() < 0.7) params[k] = r() < 0.5 ? number() : r() < 0.6 ? text() : value()
    const metrics: Record<string, number> = {}
    for (const k of ['acc', 'loss', 'test_acc', `m${i % 7}`]) if (r() < 0.8) metrics[k] = number()
    const m: Record<string, unknown> = manifest(name, { params, metrics, seed: Math.floor(r() * 100), dataset: pick(['cifar10', 'mnist', text()]), arch: r() < 0.2 ? undefined : pick(['cnn', 'vit']) })
    if (r() < 0.3) m.parents = [{ name: `r/m${Math.floor(r() * 300)}`, version: 1, seal: 'bafy', relation: pick(['fine-tune', 'soup', 'merge']) }]
    if (r() < 0.2) delete m.promoter
    const [, bytes] = pick(layouts(m))
    items.push({ path: pathOf(name), bytes, retired: r() < 0.1, facts: r() < 0.5 ? { blob: 'c'.repeat(40) } : { mtime: 1700000000000 + i, size: bytes.length, ino: i } })
  }
  const s = scanned(items)
  assert.ok(s.declined.length < 20, `the scanner takes nearly all (declined ${s.declined.length})`)
  assert.deepEqual(s.problems, [])
  assert.ok(s.bytes.equals(full(items).bytes))
})

test('a hand-edited manifest in odd spacing and unicode is found by the CLI as written', async () => {
  const { dir, cleanup } = await tempRepo('zoo-scan-')
  try {
    const m = manifest('hand/edited', { dataset: 'caf\u00e9', params: { lr: 1e-7, note: 'tab\there', big: 12345678901234567890, flag: true } })
    const bytes = layouts(m)[3]![1]
    await mkdir(join(dir, 'models/hand/edited/v1'), { recursive: true })
    await writeFile(join(dir, pathOf('hand/edited')), bytes)
    const other = manifest('hand/plain')
    await mkdir(join(dir, 'models/hand/plain/v1'), { recursive: true })
    await writeFile(join(dir, pathOf('hand/plain')), JSON.stringify(other, null, 2) + '\n')
    await git(dir, 'add', 'models')
    const r = await zoo(dir, ['find', 'dataset=caf\u00e9', 'params.lr<1e-6', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const got = JSON.parse(r.stdout) as { models: Array<{ name: string; params: Record<string, unknown>; metrics: Record<string, number> }> }
    assert.deepEqual(got.models.map((x) => x.name), ['hand/edited'])
    assert.deepEqual(got.models[0]!.params, { big: 12345678901234567890, flag: true, lr: 1e-7, note: 'tab\there' })
    assert.deepEqual(got.models[0]!.metrics, m.metrics)
  } finally { await cleanup() }
})
