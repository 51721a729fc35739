/**
 * The local store's indexes (spec/format.md, "The local store"): sorted per-pack indexes
 * ("ZOOIDX02") and the multi-pack index, searched in place. Through the real CLI where a user would
 * meet them (old stores, damage, a crash while the multi-pack index is written, gc), in process for
 * the index code itself (two writers at once, lookups across many packs).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { flipByte, tempRepo, zoo, type Run } from './cli.js'
import { safetensorsBytes } from './helpers-git.js'
import { LocalStore, encodeIndex, parseIndex } from '../src/cas/local.js'
import { MIDX_FILE, MultiPackIndex, keyOf, openViewSync, writeMultiPackIndex } from '../src/cas/pack-index.js'
import { cidOf, RAW, type CID } from '../src/cas/cid.js'
import { processHost } from '../src/host.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

/** `n` packs of `per` random objects each, written by a handle of their own (no registration). */
async function morePacks(storeRoot: string, n: number, per = 3): Promise<Array<{ cid: CID; bytes: Buffer }>> {
  const store = await LocalStore.open(storeRoot)
  const out: Array<{ cid: CID; bytes: Buffer }> = []
  try {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < per; j++) {
        const bytes = randomBytes(200 + ((i * per + j) % 50))
        const cid = cidOf(RAW, bytes)
        await store.put(cid, bytes)
        out.push({ cid, bytes })
      }
      await store.flush()
    }
  } finally { await store.close() }
  return out
}

const idxFiles = async (storeRoot: string): Promise<string[]> => (await readdir(join(storeRoot, 'packs'))).filter((n) => n.endsWith('.idx')).sort()
const hasMidx = (storeRoot: string): Promise<boolean> => stat(join(storeRoot, 'packs', MIDX_FILE)).then(() => true, () => false)

/** A zoo with one committed model (a safetensors file); returns where things are. */
async function zooWithModel(): Promise<{ dir: string; store: string; file: Buffer; work: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-midx-')
  const work = await mkdtemp(join(tmpdir(), 'zoo-midx-work-'))
  await ok(zoo(r.dir, ['init']), 'init')
  const file = safetensorsBytes(3000, 1)
  await writeFile(join(work, 'a.safetensors'), file)
  await ok(zoo(r.dir, ['add', join(work, 'a.safetensors'), '--name', 'm/a']), 'add')
  return { dir: r.dir, store: join(r.dir, '.git', 'zoo'), file, work, cleanup: async () => { await r.cleanup(); await rm(work, { recursive: true, force: true }) } }
}

async function addModel(z: { dir: string; work: string }, name: string, fill: number, env: NodeJS.ProcessEnv = {}): Promise<{ run: Run; file: Buffer }> {
  const file = safetensorsBytes(2000, fill)
  const path = join(z.work, `${name.replace('/', '-')}.safetensors`)
  await writeFile(path, file)
  return { run: await zoo(z.dir, ['add', path, '--name', name], env), file }
}

async function getSha(z: { dir: string; work: string }, ref: string, out: string): Promise<string> {
  const r = await ok(zoo(z.dir, ['get', ref, '--out', join(z.work, out), '--json']), `get ${ref}`)
  const files = (JSON.parse(r.stdout) as { files: Array<{ path: string }> }).files
  return sha(await readFile(join(z.work, out, files[0]!.path)))
}

/** Rewrite every per-pack index of the store with the old "ZOOIDX01" encoder, as the previous version wrote them. */
async function toOldIndexes(storeRoot: string): Promise<number> {
  const names = await idxFiles(storeRoot)
  for (const n of names) {
    const p = join(storeRoot, 'packs', n)
    const entries = parseIndex(await readFile(p), n)
    await rm(p, { force: true })
    await writeFile(p, encodeIndex(entries))
  }
  return names.length
}

describe('store indexes', { concurrency: true }, () => {
  it('a store written with the old ZOOIDX01 indexes verifies and gets; the next multi-pack index write rewrites them', async () => {
    const z = await zooWithModel()
    try {
      const extra = await morePacks(z.store, 3)
      const n = await toOldIndexes(z.store)
      assert.ok(n >= 4)
      for (const name of await idxFiles(z.store)) assert.equal((await readFile(join(z.store, 'packs', name))).subarray(0, 8).toString(), 'ZOOIDX01')
      await ok(zoo(z.dir, ['verify']), 'verify of the old store')
      assert.equal(await getSha(z, 'm/a@v1', 'old'), sha(z.file))
      const s = await LocalStore.open(z.store)
      for (const { cid, bytes } of extra) assert.deepEqual(Buffer.from(await s.get(cid)), bytes)
      const listed = new Set<string>()
      for await (const c of s.list()) { assert.ok(!listed.has(c.toString()), 'listed once'); listed.add(c.toString()) }
      for (const { cid } of extra) assert.ok(listed.has(cid.toString()))
      await s.close()
      // the next writer that writes a multi-pack index rewrites them as ZOOIDX02 first
      const w = await LocalStore.open(z.store, { host: processHost(), midxThreshold: 2 })
      await w.put(cidOf(RAW, Buffer.from('one more')), Buffer.from('one more'))
      await w.close()
      assert.ok(await hasMidx(z.store))
      for (const name of await idxFiles(z.store)) assert.equal((await readFile(join(z.store, 'packs', name))).subarray(0, 8).toString(), 'ZOOIDX02', name)
      await ok(zoo(z.dir, ['verify']), 'verify after the rewrite')
      assert.equal(await getSha(z, 'm/a@v1', 'new'), sha(z.file))
    } finally { await z.cleanup() }
  })

  it('a writing command writes the multi-pack index past the threshold; lookups answer from it', async () => {
    const z = await zooWithModel()
    try {
      const extra = await morePacks(z.store, 16)
      assert.equal(await hasMidx(z.store), false)
      const b = await addModel(z, 'm/b', 5)
      assert.equal(b.run.code, 0, b.run.stderr)
      assert.ok(await hasMidx(z.store), 'add wrote the multi-pack index')
      const m = MultiPackIndex.open(join(z.store, 'packs', MIDX_FILE))
      // the same file searched with one positioned read per lookup (what a large one gets)
      const byReads = MultiPackIndex.open(join(z.store, 'packs', MIDX_FILE), 0)
      try {
        assert.equal(m.packs.length, (await idxFiles(z.store)).length, 'it covers every pack')
        assert.ok(m.checksumOk())
        for (const { cid } of extra) {
          const found = m.find(keyOf(cid)!)
          assert.ok(found, 'found in the records read at open')
          assert.deepEqual(byReads.find(keyOf(cid)!), found, 'the same answer from positioned reads')
        }
        assert.equal(m.find(keyOf(cidOf(RAW, Buffer.from('absent')))!), undefined)
        assert.equal(byReads.find(keyOf(cidOf(RAW, Buffer.from('absent')))!), undefined)
      } finally { m.close(); byReads.close() }
      await ok(zoo(z.dir, ['verify']), 'verify')
      assert.equal(await getSha(z, 'm/a@v1', 'a'), sha(z.file))
      assert.equal(await getSha(z, 'm/b@v1', 'b'), sha(b.file))
      const s = await LocalStore.open(z.store)
      for (const { cid, bytes } of extra) { assert.ok(await s.has(cid)); assert.deepEqual(Buffer.from(await s.get(cid)), bytes) }
      assert.equal(await s.has(cidOf(RAW, Buffer.from('absent'))), false)
      await s.close()
      // the catalog's synchronous reader (checkpoint nodes' history) finds them through it too
      const view = openViewSync(join(z.store, 'packs'))
      try {
        assert.ok(view.midx, 'the synchronous view uses the multi-pack index')
        for (const { cid } of extra) assert.ok(view.lookup(keyOf(cid)!), 'found by the synchronous view')
        assert.equal(view.lookup(keyOf(cidOf(RAW, Buffer.from('absent')))!), undefined)
      } finally { view.close() }
    } finally { await z.cleanup() }
  })

  it('a crash while the multi-pack index is written leaves the store valid; the command run again writes it', async () => {
    const z = await zooWithModel()
    try {
      await morePacks(z.store, 16)
      const before = await idxFiles(z.store)
      const b = await addModel(z, 'm/b', 7, { GIT_ZOO_CRASH_AT: 'midx-written' })
      assert.notEqual(b.run.code, 0)
      assert.match(b.run.stderr, /crash point midx-written/)
      assert.equal(await hasMidx(z.store), false, 'nothing renamed into place')
      assert.ok((await readdir(join(z.store, 'packs'))).some((n) => n.startsWith(`.${MIDX_FILE}.`) && n.endsWith('.tmp')), 'the complete temp file is left for gc')
      assert.equal((await idxFiles(z.store)).length, before.length + 1, "the add's own pack is indexed")
      await ok(zoo(z.dir, ['verify']), 'verify after the crash')
      assert.equal(await getSha(z, 'm/a@v1', 'a'), sha(z.file))
      const again = await addModel(z, 'm/b', 7)
      assert.equal(again.run.code, 0, again.run.stderr)
      assert.ok(await hasMidx(z.store), 'the rerun wrote it')
      await ok(zoo(z.dir, ['verify']), 'verify')
      assert.equal(await getSha(z, 'm/b@v1', 'b'), sha(again.file))
    } finally { await z.cleanup() }
  })

  it('a damaged multi-pack index is not trusted: reads fall back to the per-pack indexes, the next writer rebuilds it', async () => {
    const z = await zooWithModel()
    try {
      const extra = await morePacks(z.store, 16)
      const c = await addModel(z, 'm/c', 4)
      assert.equal(c.run.code, 0, c.run.stderr)
      const midx = join(z.store, 'packs', MIDX_FILE)
      assert.ok(await hasMidx(z.store))
      // a damaged header: seen at open
      await flipByte(midx, 8)
      await ok(zoo(z.dir, ['verify']), 'verify with a damaged header')
      assert.equal(await getSha(z, 'm/a@v1', 'a'), sha(z.file))
      const s = await LocalStore.open(z.store)
      for (const { cid, bytes } of extra) assert.deepEqual(Buffer.from(await s.get(cid)), bytes)
      await s.close()
      const d = await addModel(z, 'm/d', 9)
      assert.equal(d.run.code, 0, d.run.stderr)
      let m = MultiPackIndex.open(midx)
      assert.ok(m.checksumOk(), 'rebuilt'); m.close()
      // damaged records (not seen by the header checks): the checksum is checked by the next merge,
      // which then rebuilds from the per-pack indexes
      const size = (await stat(midx)).size
      await flipByte(midx, size - 40 - (4 << 8) - 47 * 2) // inside a record near the end
      const r = await writeMultiPackIndex(join(z.store, 'packs'), { useBase: true })
      assert.ok(r && r.objects > extra.length)
      const merged = await readFile(midx)
      await writeMultiPackIndex(join(z.store, 'packs'), { useBase: false })
      assert.ok(merged.equals(await readFile(midx)), 'the damaged record was not carried over: the same bytes as a rebuild from the per-pack indexes')
      await ok(zoo(z.dir, ['verify']), 'verify')
      assert.equal(await getSha(z, 'm/d@v1', 'd'), sha(d.file))
    } finally { await z.cleanup() }
  })

  it('a damaged ZOOIDX02 index is rebuilt from its pack, in reads and by the multi-pack index writer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-midx-'))
    try {
      const objs = await morePacks(dir, 4, 5)
      const [first] = await idxFiles(dir)
      await truncate(join(dir, 'packs', first!), 100)
      const s = await LocalStore.open(dir)
      for (const { cid, bytes } of objs) assert.deepEqual(Buffer.from(await s.get(cid)), bytes)
      await s.close()
      const r = await writeMultiPackIndex(join(dir, 'packs'))
      assert.equal(r?.rewrittenIdx, 1)
      assert.equal(r?.objects, objs.length)
      assert.equal(parseIndex(await readFile(join(dir, 'packs', first!)), first!).length, 5, 'the index was written back, whole')
      const t = await LocalStore.open(dir)
      for (const { cid, bytes } of objs) assert.deepEqual(Buffer.from(await t.get(cid)), bytes)
      await t.close()
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('two writers flushing at once each see the other\'s objects; the multi-pack index covers both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-midx-'))
    try {
      await morePacks(dir, 3)
      const host = processHost()
      const a = await LocalStore.open(dir, { host, midxThreshold: 2, packTargetSize: 4096 })
      const b = await LocalStore.open(dir, { host, midxThreshold: 2, packTargetSize: 4096 })
      const mine = (tag: string): Array<{ cid: CID; bytes: Buffer }> => Array.from({ length: 40 }, (_, i) => {
        const bytes = Buffer.concat([Buffer.from(`${tag}-${i}-`), randomBytes(300)])
        return { cid: cidOf(RAW, bytes), bytes }
      })
      const oa = mine('a'), ob = mine('b')
      // one object written by both (the same chunk in two packs)
      const both = Buffer.from('shared by both writers'); const cb = cidOf(RAW, both)
      await Promise.all([
        (async () => { for (const o of oa) await a.put(o.cid, o.bytes); await a.put(cb, both); await a.flush() })(),
        (async () => { for (const o of ob) await b.put(o.cid, o.bytes); await b.put(cb, both); await b.flush() })(),
      ])
      for (const o of ob) { assert.ok(await a.has(o.cid)); assert.deepEqual(Buffer.from(await a.get(o.cid)), o.bytes) }
      for (const o of oa) { assert.ok(await b.has(o.cid)); assert.deepEqual(Buffer.from(await b.get(o.cid)), o.bytes) }
      await Promise.all([a.close(), b.close()])
      assert.ok(await hasMidx(dir))
      const c = await LocalStore.open(dir)
      const listed = c.entries().map(([cid]) => cid.toString())
      assert.equal(new Set(listed).size, listed.length, 'each object listed once')
      for (const o of [...oa, ...ob, { cid: cb, bytes: both }]) assert.deepEqual(Buffer.from(await c.get(o.cid)), o.bytes)
      await c.close()
      // a fresh multi-pack index from every per-pack index agrees
      const r = await writeMultiPackIndex(join(dir, 'packs'), { useBase: false })
      assert.equal(r?.objects, listed.length)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('gc after a multi-pack index keeps every reachable object and rewrites it without the removed packs', async () => {
    const z = await zooWithModel()
    try {
      await morePacks(z.store, 16) // unreferenced: gc --grace 0 removes them
      const b = await addModel(z, 'm/b', 2)
      assert.equal(b.run.code, 0, b.run.stderr)
      assert.ok(await hasMidx(z.store))
      const g = JSON.parse((await ok(zoo(z.dir, ['gc', '--grace', '0', '--json']), 'gc')).stdout) as { packs_removed: number; removed_objects: number }
      assert.ok(g.packs_removed >= 16, JSON.stringify(g))
      const m = MultiPackIndex.open(join(z.store, 'packs', MIDX_FILE))
      try {
        const present = new Set((await idxFiles(z.store)).map((n) => n.slice(0, -4) + '.pack'))
        for (const p of m.packs) assert.ok(present.has(p), `the multi-pack index names ${p}, which gc removed`)
        assert.ok(m.checksumOk())
      } finally { m.close() }
      await ok(zoo(z.dir, ['verify']), 'verify after gc')
      assert.equal(await getSha(z, 'm/a@v1', 'a'), sha(z.file))
      assert.equal(await getSha(z, 'm/b@v1', 'b'), sha(b.file))
    } finally { await z.cleanup() }
  })

  it('gc that removes only packs the multi-pack index does not cover leaves it as it is', async () => {
    const z = await zooWithModel()
    try {
      assert.ok(await writeMultiPackIndex(join(z.store, 'packs')), 'a multi-pack index over the first model')
      const b = await addModel(z, 'm/b', 2) // referenced, not covered
      assert.equal(b.run.code, 0, b.run.stderr)
      await morePacks(z.store, 3) // unreferenced, not covered: gc --grace 0 removes them
      const midx = join(z.store, 'packs', MIDX_FILE)
      const before = await stat(midx), bytes = await readFile(midx)
      const g = JSON.parse((await ok(zoo(z.dir, ['gc', '--grace', '0', '--json']), 'gc')).stdout) as { packs_removed: number }
      assert.equal(g.packs_removed, 3, JSON.stringify(g))
      const after = await stat(midx)
      assert.equal(after.ino, before.ino, 'the multi-pack index was not rewritten')
      assert.deepEqual(await readFile(midx), bytes)
      await ok(zoo(z.dir, ['verify']), 'verify after gc')
      assert.equal(await getSha(z, 'm/b@v1', 'b'), sha(b.file))
    } finally { await z.cleanup() }
  })
})
