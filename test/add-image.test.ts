/**
 * add's zero-copy path (src/ingest/ingest.ts "Image slabs", LocalStore.putImage, padding records in
 * spec/format.md): a large file's planned chunks (tensors in fixed-size chunks, segments kept whole)
 * are read straight to their place in the pack's records and written from the slab. What a user sees
 * must not change: the file comes back byte for byte, `sha256sum` agrees with the manifest, every
 * record of every pack checks against its CID (padding records are ordinary objects), a damaged or
 * removed index is rebuilt from the pack, dedup stores each chunk once, a file mixing CDC and fixed
 * regions is cut exactly as the chunker cuts it, a kill in the middle leaves a valid store, and
 * GIT_ZOO_DIRECT_IO=0 writes the same records without padding.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, rm, stat, writeFile, mkdtemp } from 'node:fs/promises'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { run, tempRepo, zoo } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { describeFile } from '../src/formats/index.js'
import { Chunker } from '../src/chunk/chunker.js'
import { DEFAULT_CDC, FIXED_CHUNK } from '../src/chunk/params.js'
import { chunkCid, cidFromDigest, sha256, RAW } from '../src/cas/cid.js'
import { AppendWriter } from '../src/cas/append-write.js'
import { LocalStore, RECORD_GAP, scanPack } from '../src/cas/local.js'
import { PROJECT_ROOT } from '../src/version.js'

const MiB = 1024 * 1024
const BIN = join(PROJECT_ROOT, 'bin', 'git-zoo.js')

/** Deterministic bytes (xorshift32), so a failure is reproducible. */
function bytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 0xff }
  return out
}

/** A safetensors file of U8 tensors with these sizes (seed per tensor: equal seeds give equal tensors). */
function safetensors(tensors: Array<[seed: number, size: number]>, metadata?: Record<string, string>): Buffer {
  return Buffer.from(encodeSafetensors(tensors.map(([seed, n], i) => ({ name: `t${String(i).padStart(2, '0')}`, dtype: 'U8', shape: [n], data: bytes(seed, n) })), metadata))
}

/** `size` bytes of page-aligned shared memory, as the add pipeline's slabs are. */
function alignedSlab(size: number): Uint8Array {
  const pages = Math.ceil(size / 65536)
  return new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as ArrayBuffer, 0, size)
}

interface Rec { pack: string; cid: CID; offset: number; len: number; padding: boolean }

/** Every record of every pack in `packsDir`, read the way an old reader does (scanPack: each checked against its CID). */
async function records(packsDir: string, opts: { killedTail?: boolean } = {}): Promise<Rec[]> {
  const out: Rec[] = []
  for (const name of (await readdir(packsDir)).filter((n) => n.endsWith('.pack')).sort()) {
    const data = await readFile(join(packsDir, name))
    const { entries, validBytes } = await scanPack(join(packsDir, name))
    // a pack killed mid-write may end in a partial record or zeros (readers stop there); any other is records to its last byte
    if (opts.killedTail) assert.ok(validBytes > 8, `${name}: complete records`)
    else assert.equal(validBytes, data.length, `${name}: every record checks against its CID, up to the pack's last byte`)
    for (const [k, offset, len] of entries) {
      const cid = CID.decode(Buffer.from(k, 'latin1'))
      // a padding record: raw, sha2-256, its first 8 bytes its own pack offset
      const padding = cid.code === RAW && cid.multihash.code === 0x12 && len >= 16 && data.readBigUInt64LE(offset) === BigInt(offset)
      out.push({ pack: name, cid, offset, len, padding })
    }
  }
  return out
}

const packsOf = (dir: string): string => join(dir, '.git', 'zoo', 'packs')
const directFs = (): boolean => ['ext2/ext3', 'ext4', 'xfs', 'btrfs'].includes(spawnSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).stdout.trim())

/** The chunk CIDs the chunker (src/chunk/chunker.ts, the spec's reference) gives `file` in a BLAKE3 zoo. */
async function expectedChunks(file: Uint8Array): Promise<string[]> {
  const desc = await describeFile(async (o, l) => file.subarray(o, Math.min(file.length, o + l)), file.length)
  assert.ok(desc.segments, 'the test file has segments')
  const c = new Chunker(desc.segments, DEFAULT_CDC, desc.fixed ?? null, FIXED_CHUNK)
  return [...c.push(file), ...c.end()].map((p) => chunkCid('blake3', p).toString())
}

async function addJson(dir: string, file: string, name: string, env: NodeJS.ProcessEnv = {}): Promise<{ stored_bytes: number; files: Array<{ sha256: string }> }> {
  const a = await zoo(dir, ['add', file, '--name', name, '--json'], env)
  assert.equal(a.code, 0, a.stderr)
  return JSON.parse(a.stdout)
}

async function getSame(dir: string, name: string, file: string, want: Uint8Array, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const out = join(dir, `out-${name}`)
  await rm(out, { recursive: true, force: true })
  const g = await zoo(dir, ['get', name, '--out', out], env)
  assert.equal(g.code, 0, g.stderr)
  assert.ok((await readFile(join(out, file))).equals(want), `${name}: get gives back the file byte for byte`)
}

for (const direct of [true, false]) {
  test(`AppendWriter (${direct ? 'O_DIRECT' : 'buffered'}): append() and appendAligned() mixed give the bytes in order, the block reusable once each settles`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-mix-'))
    try {
      const w = await AppendWriter.create(join(dir, 'p'), dir, { direct })
      const want: Uint8Array[] = []
      const block = alignedSlab(9 * MiB)
      const app = async (seed: number, n: number): Promise<void> => { const b = bytes(seed, n); want.push(b); await w.append([b]) }
      const aligned = async (seed: number, n: number): Promise<void> => {
        const head = w.size % 4096
        const b = bytes(seed, n)
        block.set(b, head)
        want.push(b)
        await w.appendAligned(block, head, n)
        block.fill(0xee) // reused at once, as add reuses its slabs
      }
      // staged records over a whole block, images of odd lengths, staged records past a staging buffer
      await app(1, 8); await app(2, 4088 + 4096 + 17); await aligned(3, 5 * MiB + 3); await aligned(4, 77)
      await app(5, 5 * MiB + 1); await aligned(6, 8 * MiB + 4095); await app(7, 44); await aligned(8, 4096 - 44 - 1)
      await w.finish()
      await w.fd.close()
      const expect = Buffer.concat(want)
      assert.equal(w.size, expect.length)
      assert.ok((await readFile(join(dir, 'p'))).equals(expect), 'the file holds every part in order, nothing else')
      if (direct && directFs()) assert.equal(w.direct, true)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
}

for (const direct of [true, false]) {
  test(`AppendWriter.issueAligned (${direct ? 'O_DIRECT' : 'buffered'}): calls go on while earlier writes run, each block reusable once its own write settles, bytes in order`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-issue-'))
    try {
      const w = await AppendWriter.create(join(dir, 'p'), dir, { direct })
      const want: Uint8Array[] = []
      // a ring of two blocks, as add's slabs: a block is filled again as soon as its write settled,
      // while the other block's write may still run
      const ring = [alignedSlab(3 * MiB), alignedSlab(3 * MiB)]
      const written: Array<Promise<void> | undefined> = [undefined, undefined]
      for (let i = 0; i < 10; i++) {
        const k = i % 2
        await written[k]
        ring[k]!.fill(0xee) // whatever the block held before
        const head = w.size % 4096
        const n = 2 * MiB + 4096 * i + 13 * i + 1
        const b = bytes(100 + i, n)
        ring[k]!.set(b, head)
        want.push(b)
        written[k] = (await w.issueAligned(ring[k]!, head, n)).written
        if (i === 4) { const r = bytes(200, 5000); want.push(r); await w.append([r]) } // a staged record between images
      }
      await Promise.all(written)
      await w.finish()
      await w.fd.close()
      const expect = Buffer.concat(want)
      assert.equal(w.size, expect.length)
      assert.ok((await readFile(join(dir, 'p'))).equals(expect), 'the file holds every part in order, nothing else')
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
}

test('LocalStore.putImage: new items in one image (with a padding record in direct mode), a run with stored or repeated items through staging, rollover after the image', async () => {
  for (const directIO of [true, false]) {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-putimage-'))
    try {
      const store = await LocalStore.open(dir, { directIO, packTargetSize: 2 * MiB })
      const slab = alignedSlab(8 * MiB)
      // lay items out as ingest does: header gap before each, the first header at `head`
      const layout = (head: number, datas: Uint8Array[]): Array<{ cid: CID; off: number; len: number }> => {
        let at = head
        return datas.map((d) => {
          at += RECORD_GAP
          slab.set(d, at)
          const item = { cid: cidFromDigest(RAW, sha256(d)), off: at, len: d.length }
          at += d.length
          return item
        })
      }
      const a = [bytes(1, 300000), bytes(2, 1), bytes(3, 1900000)]
      assert.deepEqual(await store.putImage(slab, 1000, layout(1000, a)), [true, true, true])
      // the pack passed 2 MiB with that image: the next one starts a new pack
      const b = [bytes(4, 5000), bytes(1, 300000), bytes(4, 5000), bytes(5, 70000)] // one stored, one repeated
      assert.deepEqual(await store.putImage(slab, 123, layout(123, b)), [true, false, false, true])
      const c = [bytes(6, 262144), bytes(7, 262144)]
      assert.deepEqual(await store.putImage(slab, 4095, layout(4095, c)), [true, true])
      slab.fill(0) // the slab may be reused once putImage settles
      await store.close()
      const recs = await records(join(dir, 'packs'))
      const data = recs.filter((r) => !r.padding)
      // (two packs named in the same millisecond sort in any order: compare the lengths as a set)
      assert.deepEqual(data.map((r) => r.len).sort((x, y) => x - y), [1, 5000, 70000, 262144, 262144, 300000, 1900000], 'each object once')
      assert.equal(new Set(data.map((r) => r.pack)).size, 2, 'the first image filled its pack; the rest went to a new one')
      const pads = recs.filter((r) => r.padding)
      if (directIO && directFs()) assert.ok(pads.length >= 2, 'direct mode pads each new pack to the image\'s alignment')
      if (!directIO) assert.equal(pads.length, 0, 'buffered writes need no padding')
      const again = await LocalStore.open(dir)
      for (const [i, d] of [...a, ...b, ...c].entries()) assert.ok(Buffer.from(await again.get(cidFromDigest(RAW, sha256(d)))).equals(d), `object ${i} reads back`)
      assert.equal(store.storedBytes, data.reduce((s, r) => s + r.len, 0), 'stored bytes count the objects, not the padding')
      await again.close()
    } finally { await rm(dir, { recursive: true, force: true }) }
  }
})

test('add of a safetensors checkpoint through image slabs: get, sha256sum, every pack record checked, padding records, verify, a damaged or removed index rebuilt', async () => {
  const r = await tempRepo('zoo-image-')
  try {
    // odd tensor sizes (not multiples of 4 KiB), tensors kept whole and cut in 256 KiB chunks, over 16 MiB (the slab path)
    const file = safetensors([[1, 3 * MiB + 5], [2, 600 * 1024], [3, 9 * MiB + 3], [4, 77], [5, 5 * MiB], [6, 4 * MiB + 1]])
    await writeFile(join(r.dir, 'm.safetensors'), file)
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    const a = await addJson(r.dir, 'm.safetensors', 'm')
    const sum = await run('sha256sum', ['m.safetensors'], { cwd: r.dir })
    assert.equal(sum.stdout.split(' ')[0], a.files[0]!.sha256, 'sha256sum agrees with the manifest')
    await getSame(r.dir, 'm', 'm.safetensors', file)
    const recs = await records(packsOf(r.dir))
    const chunks = recs.filter((x) => !x.padding && x.cid.code === RAW).map((x) => x.cid.toString())
    assert.deepEqual(chunks, await expectedChunks(file), 'the pack holds the chunker\'s chunks, in file order, each once')
    if (directFs()) assert.ok(recs.some((x) => x.padding), 'direct writes padded the pack to the image\'s alignment')
    assert.equal(a.stored_bytes, recs.filter((x) => !x.padding).reduce((s, x) => s + x.len, 0), 'stored_bytes: chunks and nodes, not padding')
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)

    // a damaged index is rebuilt from the pack's records (padding records included) when it is read
    const packs = packsOf(r.dir)
    const idx = (await readdir(packs)).filter((n) => n.endsWith('.idx'))
    assert.equal(idx.length, 1)
    await rm(join(packs, 'multi-pack-index'), { force: true })
    await writeFile(join(packs, idx[0]!), Buffer.from('not an index'))
    await getSame(r.dir, 'm', 'm.safetensors', file)
    const v = await zoo(r.dir, ['verify'])
    assert.equal(v.code, 0, v.stderr)
    // a removed index: the next add indexes the pack again (recoverInterrupted), get works
    await rm(join(packs, idx[0]!))
    await writeFile(join(r.dir, 'small.txt'), 'a small file\n')
    await addJson(r.dir, 'small.txt', 'small')
    assert.ok((await readdir(packs)).includes(idx[0]!), 'the pack is indexed again')
    await getSame(r.dir, 'm', 'm.safetensors', file)
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)
  } finally { await r.cleanup() }
})

test('dedup through image slabs: identical tensors in one file and a fine-tune store each chunk once', async () => {
  const r = await tempRepo('zoo-image-dedup-')
  try {
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    const X = 6 * MiB + 5
    const base = safetensors([[7, X], [7, X], [8, 2 * MiB + 3], [7, X]])
    await writeFile(join(r.dir, 'base.safetensors'), base)
    const a = await addJson(r.dir, 'base.safetensors', 'base')
    let recs = await records(packsOf(r.dir))
    const raw = (rs: Rec[]): number => rs.filter((x) => !x.padding && x.cid.code === RAW).reduce((s, x) => s + x.len, 0)
    assert.equal(raw(recs), base.length - 2 * X, 'the repeated tensor is stored once')
    assert.equal(new Set(recs.map((x) => x.cid.toString())).size, recs.length, 'no object is written twice')
    assert.equal(a.stored_bytes, recs.filter((x) => !x.padding).reduce((s, x) => s + x.len, 0))
    await getSame(r.dir, 'base', 'base.safetensors', base)

    // the fine-tune: the 2 MiB tensor changed, everything else as in the base
    const tuned = safetensors([[7, X], [7, X], [9, 2 * MiB + 3], [7, X]])
    await writeFile(join(r.dir, 'tuned.safetensors'), tuned)
    const before = new Set(recs.map((x) => x.pack))
    const t = await addJson(r.dir, 'tuned.safetensors', 'tuned')
    recs = await records(packsOf(r.dir))
    const added = recs.filter((x) => !before.has(x.pack))
    assert.equal(raw(added), 2 * MiB + 3, 'only the changed tensor\'s chunks are new')
    assert.equal(t.stored_bytes, added.filter((x) => !x.padding).reduce((s, x) => s + x.len, 0))
    await getSame(r.dir, 'tuned', 'tuned.safetensors', tuned)
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)
  } finally { await r.cleanup() }
})

test('a file mixing CDC and fixed regions (a 1.5 MiB header, then tensors) gets the chunker\'s cuts, with O_DIRECT and with GIT_ZOO_DIRECT_IO=0 alike', async () => {
  const file = safetensors([[11, 7 * MiB + 9], [12, 300], [13, 9 * MiB + 1]], { notes: Buffer.from(bytes(14, 768 * 1024)).toString('hex') })
  const want = await expectedChunks(file)
  const got: string[][] = []
  for (const env of [{}, { GIT_ZOO_DIRECT_IO: '0' }]) {
    const r = await tempRepo('zoo-image-mixed-')
    try {
      await writeFile(join(r.dir, 'm.safetensors'), file)
      assert.equal((await zoo(r.dir, ['init'], env)).code, 0)
      await addJson(r.dir, 'm.safetensors', 'm', env)
      await getSame(r.dir, 'm', 'm.safetensors', file, env)
      const recs = await records(packsOf(r.dir))
      if ('GIT_ZOO_DIRECT_IO' in env) assert.equal(recs.filter((x) => x.padding).length, 0, 'buffered writes need no padding records')
      got.push(recs.filter((x) => !x.padding && x.cid.code === RAW).map((x) => x.cid.toString()))
      assert.equal((await zoo(r.dir, ['verify'], env)).code, 0)
    } finally { await r.cleanup() }
  }
  assert.ok(want.length > 40)
  assert.deepEqual(got[0], want, 'direct: the chunker\'s chunks in file order')
  assert.deepEqual(got[1], want, 'buffered: the same chunks')
})

test('one add of a small file and two checkpoints: images follow staged records and tree nodes in one pack, each file comes back', async () => {
  const r = await tempRepo('zoo-image-multi-')
  try {
    const one = safetensors([[31, 8 * MiB + 7], [32, 9 * MiB + 1]])
    const two = safetensors([[33, 17 * MiB + 3], [34, 1001]])
    await writeFile(join(r.dir, 'a.txt'), 'a small file first\n')
    await writeFile(join(r.dir, 'one.safetensors'), one)
    await writeFile(join(r.dir, 'two.safetensors'), two)
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    // the small file's object starts the pack (through the page cache or staging), then the checkpoints' images
    const m = await zoo(r.dir, ['add', 'a.txt', 'one.safetensors', 'two.safetensors', '--name', 'both', '--json'])
    assert.equal(m.code, 0, m.stderr)
    await getSame(r.dir, 'both', 'a.txt', Buffer.from('a small file first\n'))
    const recs = await records(packsOf(r.dir))
    const chunks = recs.filter((x) => !x.padding && x.cid.code === RAW).map((x) => x.cid.toString())
    for (const [f, bytes1] of [['one.safetensors', one], ['two.safetensors', two]] as const) {
      const want = await expectedChunks(bytes1)
      assert.ok(want.every((c) => chunks.includes(c)), `${f}: every chunk stored`)
      await getSame(r.dir, 'both', f, bytes1)
    }
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)
  } finally { await r.cleanup() }
})

test('kill -9 in the middle of an image add (add-mid-pack): the store stays valid and the same add then succeeds', async () => {
  const r = await tempRepo('zoo-image-crash-')
  try {
    const file = safetensors([[21, 10 * MiB + 1], [22, 12 * MiB + 2]])
    await writeFile(join(r.dir, 'm.safetensors'), file)
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    const killed = await new Promise<{ signal: NodeJS.Signals | null; stderr: string }>((res, rej) => {
      const child = spawn(process.execPath, [BIN, 'add', 'm.safetensors', '--name', 'm'], { cwd: r.dir, env: { ...process.env, GIT_ZOO_CRASH_AT: 'add-mid-pack' }, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
      child.on('error', rej)
      child.on('close', (_c, signal) => res({ signal, stderr }))
    })
    assert.equal(killed.signal, 'SIGKILL', killed.stderr)
    const names = await readdir(packsOf(r.dir))
    assert.equal(names.filter((n) => n.endsWith('.idx')).length, 0, 'the killed pack has no index')
    const pack = names.find((n) => n.endsWith('.pack'))!
    assert.ok((await stat(join(packsOf(r.dir), pack))).size >= 4 * MiB, 'images were written before the kill')
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)
    const a = await addJson(r.dir, 'm.safetensors', 'm')
    assert.ok(a.stored_bytes < file.length, `the killed run's records were recovered, not written again (stored ${a.stored_bytes} of ${file.length})`)
    await records(packsOf(r.dir), { killedTail: true }) // the complete records of every pack (the killed one included) check
    await getSame(r.dir, 'm', 'm.safetensors', file)
    assert.equal((await zoo(r.dir, ['verify'])).code, 0)
  } finally { await r.cleanup() }
})

test('gc and padding records: a padded pack of live chunks is kept as it is; once its model is gone the pack is removed whole', async () => {
  if (!directFs()) return // padding records are written only with O_DIRECT
  const r = await tempRepo('zoo-image-gc-')
  try {
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    assert.equal((await run('git', ['commit', '-qm', 'zoo set-up'], { cwd: r.dir })).code, 0)
    const main = (await run('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: r.dir })).stdout.trim()
    await run('git', ['checkout', '-q', '-b', 'experiment'], { cwd: r.dir })
    // the repeated tensor is appended record by record (deduplicated), so the image after it needs a padding record
    const file = safetensors([[21, 6 * MiB + 5], [21, 6 * MiB + 5], [22, 2 * MiB + 3], [23, 9 * MiB]])
    await writeFile(join(r.dir, 'm.safetensors'), file)
    await addJson(r.dir, 'm.safetensors', 'm')
    await rm(join(r.dir, 'm.safetensors'))
    const recs = await records(packsOf(r.dir))
    assert.ok(recs.some((x) => x.padding), 'the add padded its pack')
    const packs = async (): Promise<string[]> => (await readdir(packsOf(r.dir))).filter((n) => n.endsWith('.pack')).sort()
    const before = await packs()
    // every object is live: the padding does not make the pack garbage to rewrite
    const kept = JSON.parse((await zoo(r.dir, ['gc', '--grace', '0', '--json'])).stdout)
    assert.equal(kept.packs_rewritten, 0, JSON.stringify(kept))
    assert.equal(kept.removed_objects, 0, JSON.stringify(kept))
    assert.deepEqual(await packs(), before)
    // the model's only commit dropped: its chunks, nodes and the padding go with the pack
    assert.equal((await run('git', ['checkout', '-q', main], { cwd: r.dir })).code, 0)
    await run('git', ['branch', '-q', '-D', 'experiment'], { cwd: r.dir })
    await run('git', ['reflog', 'expire', '--expire=now', '--all'], { cwd: r.dir })
    const gone = JSON.parse((await zoo(r.dir, ['gc', '--grace', '0', '--json'])).stdout)
    assert.equal(gone.packs_rewritten, 0, JSON.stringify(gone))
    assert.ok(gone.packs_removed >= 1, JSON.stringify(gone))
    const left = await records(packsOf(r.dir))
    assert.ok(!left.some((x) => x.padding), 'no padding record is kept or copied')
    assert.ok(!left.some((x) => before.includes(x.pack)), 'the padded packs are gone')
  } finally { await r.cleanup() }
})
