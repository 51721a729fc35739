/**
 * BLAKE3 chunk CIDs (spec/format.md, "Chunk hash"), through the real CLI, real git, a path remote and
 * a real HTTP server on 127.0.0.1:
 * - `git zoo init` says "chunk_hash": "blake3": chunks are `bafkr4...`, nodes stay `bafyrei...`; a
 *   config without the key keeps sha2-256 chunks (`bafkrei...`); a bad value is E_CONFIG (exit 3);
 * - a zoo switched midway holds both kinds, and get, verify (a window mixing both), push, clone and a
 *   lazy get through HTTP ranges work on both; dedup works within one hash;
 * - a fine-tune in a BLAKE3 zoo stores about its changed tensor (tensor boundaries fix the chunks, so
 *   the bounds do not depend on the random bytes);
 * - a flipped byte in a BLAKE3 chunk is found by verify and get, and `verify --repair` restores it from
 *   the zoo remote; a remote serving wrong bytes for a BLAKE3 CID is refused;
 * - import prepares chunks in its worker threads with the zoo's hash;
 * - every leaf node over BLAKE3 chunks carries `hash: "blake3"` (the keys a git-zoo from before BLAKE3
 *   refuses, so its gc stops instead of deleting the chunks: spec/format.md, "Older versions");
 *   sha2-256 leaves and branch nodes do not;
 * and, below the CLI, the CID forms, the node marker (vectors, round trips, E_NODE on a mismatch, the
 * one-pass reader agreeing), the pack index keys and the workers' per-range hashes.
 */
import { before, after, describe, it, test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { git, zoo, zooWithOrigin, flipByte, processCtx, tempRepo, type Run } from './cli.js'
import { seededBytes } from './reliability-kit.js'
import { startStaticServer, poisonInPack, type StaticServer } from './remote-servers.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { Repo } from '../src/repo.js'
import { LocalStore } from '../src/cas/local.js'
import { fileChunksFast, readFileNodeFast } from '../src/zoo/file-node.js'
import { decodeNode, encodeNode, type FileNode } from '../src/manifest/node.js'
import { decodeStrict, encodeCanonical } from '../src/manifest/cbor.js'
import { BLAKE3, DAG_CBOR, RAW, SHA2_256, chunkCid, cidFromDigest, cidOf, digestWith, parseCid, verifyBytes } from '../src/cas/cid.js'
import { cidAt, keyOf, keyOfCidBytes, TAG_RAW_BLAKE3 } from '../src/cas/pack-index.js'
import { HashPool } from '../src/cas/hash-pool.js'
import { blake3 } from '../src/cas/blake3.js'
import { generatePopulation } from '../src/demo/population.js'

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

const MiB = 1024 * 1024
/** A safetensors file of three F32 tensors (1.5 MiB, 1 MiB, 2 MiB) of seeded bytes; `t1` may be replaced. */
function model(seed: string, t1?: Uint8Array): Uint8Array {
  const t = (name: string, bytes: number, data?: Uint8Array) => ({ name, dtype: 'F32', shape: [bytes / 4], data: data ?? seededBytes(bytes, `${seed}/${name}`) })
  return encodeSafetensors([t('t0', 1.5 * MiB), t('t1', MiB, t1), t('t2', 2 * MiB)])
}
const FT_T1 = seededBytes(MiB, 'fine-tune/t1')

async function setConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, '.zoo', 'config.json')
  const c = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  edit(c)
  await writeFile(path, JSON.stringify(c, null, 2) + '\n')
}

/** The chunk CIDs (strings, in file order) of every file of `ref`, and its files' roots, read from the store of `dir`. */
async function chunksOf(dir: string, ref: string): Promise<{ roots: string[]; chunks: string[] }> {
  const repo = await Repo.open(dir, processCtx())
  const m = await repo.resolve(ref)
  const store = await LocalStore.open(await repo.storeRoot())
  try {
    const chunks: string[] = []
    for (const f of m.files) for await (const [c] of fileChunksFast(CID.parse(f.root), store)) chunks.push(c.toString())
    return { roots: m.files.map((f) => f.root), chunks }
  } finally { await store.close() }
}

const B3 = /^bafkr4i[a-z2-7]{52}$/
const SHA = /^bafkrei[a-z2-7]{52}$/
const NODE = /^bafyrei[a-z2-7]{52}$/

let work: string
let a: string
let bare: string
let objects: string
const files: Record<string, Uint8Array> = {}
const fileNames: Record<string, string> = {}
const stored: Record<string, number> = {}

/**
 * work/a: a zoo made by `git zoo init` whose config then loses its chunk_hash key (a zoo made before
 * it), with old/m added; then switched to BLAKE3 (the key put back, committed) and new/m, new/ft (new/m
 * with t1 changed), new/again (old/m's bytes once more), new/big (17 MiB: get and verify go through
 * the worker threads) and new/tiny (1 KiB: a file that is one chunk, its root a BLAKE3 CID) added; pushed to a bare git remote and a path zoo remote (work/objects).
 */
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-b3-'))
  bare = join(work, 'origin.git')
  a = join(work, 'a')
  objects = join(work, 'objects')
  await zooWithOrigin(work, a, bare)
  const made = JSON.parse(await readFile(join(a, '.zoo', 'config.json'), 'utf8'))
  assert.equal(made.chunk_hash, 'blake3', 'the template names chunks by BLAKE3')
  await ok(zoo(a, ['remote', 'add', 'origin', objects]), 'remote add')
  await setConfig(a, (c) => { delete c.chunk_hash })
  await git(a, 'add', '-A')
  await git(a, 'commit', '-q', '-m', 'a zoo made before chunk_hash')
  const add = async (name: string, bytes: Uint8Array, file = 'model.safetensors'): Promise<void> => {
    files[name] = bytes
    fileNames[name] = file
    await writeFile(join(a, file), bytes)
    const r = await ok(zoo(a, ['add', file, '--name', name, '--json']), `add ${name}`)
    stored[name] = (JSON.parse(r.stdout) as { stored_bytes: number }).stored_bytes
  }
  await add('old/m', model('old'))
  await setConfig(a, (c) => { c.chunk_hash = 'blake3' })
  await git(a, 'commit', '-q', '-am', 'chunks by BLAKE3 from now on')
  await add('new/m', model('new'))
  await add('new/ft', model('new', FT_T1))
  await add('new/again', files['old/m']!)
  await add('new/big', seededBytes(17 * MiB, 'big'), 'big.bin')
  await add('new/tiny', seededBytes(1024, 'tiny'), 'tiny.bin')
  await ok(zoo(a, ['push', 'origin', 'main']), 'push')
})

after(async () => { await rm(work, { recursive: true, force: true }) })

describe('chunk_hash through the CLI', () => {
  it('a zoo without the key names chunks by sha2-256; after the switch new chunks are BLAKE3; nodes stay sha2-256', async () => {
    const old = await chunksOf(a, 'old/m')
    assert.ok(old.chunks.length >= 10, `${old.chunks.length} chunks`)
    for (const c of old.chunks) assert.match(c, SHA)
    assert.match(old.roots[0]!, NODE)
    for (const name of ['new/m', 'new/ft', 'new/again', 'new/big']) {
      const n = await chunksOf(a, name)
      for (const c of n.chunks) assert.match(c, B3, name)
      assert.match(n.roots[0]!, NODE, name)
    }
    const tiny = await chunksOf(a, 'new/tiny')
    // a file of one chunk: its root is the chunk; an older git-zoo refuses the manifest naming it
    // (only sha2-256 CIDs in manifests), so its gc stops before removing anything
    assert.match(tiny.roots[0]!, B3, 'a file of one chunk: its root is the chunk')
    assert.deepEqual(tiny.chunks, tiny.roots)
    // the same bytes under the two hashes: two sets of objects (dedup works within one hash)
    const again = await chunksOf(a, 'new/again')
    assert.equal(again.chunks.length, old.chunks.length)
    assert.ok(stored['new/again']! >= files['old/m']!.length, `new/again stored ${stored['new/again']} of ${files['old/m']!.length} bytes`)
  })

  it('leaf nodes over BLAKE3 chunks carry hash: "blake3" (keys an older git-zoo refuses); sha2-256 leaves and branch nodes keep the three keys', async () => {
    const repo = await Repo.open(a, processCtx())
    const store = await LocalStore.open(await repo.storeRoot())
    try {
      const keysOf = async (ref: string): Promise<string[]> => {
        const root = CID.parse((await repo.resolve(ref)).files[0]!.root)
        const node = decodeStrict<Record<string, unknown>>(await store.get(root), ref)
        assert.equal(node.leaf, true, `${ref}: its root is one leaf (fewer than 1,024 chunks)`)
        if ('hash' in node) assert.equal(node.hash, 'blake3', ref)
        return Object.keys(node).sort()
      }
      assert.deepEqual(await keysOf('old/m'), ['leaf', 'links', 'size'])
      for (const ref of ['new/m', 'new/ft', 'new/again', 'new/big']) assert.deepEqual(await keysOf(ref), ['hash', 'leaf', 'links', 'size'], ref)
    } finally { await store.close() }
  })

  it('a fine-tune in a BLAKE3 zoo stores its changed tensor and a node, not the unchanged ones', () => {
    // t1 (1 MiB) is one chunk; the header and the other tensors' chunks are the same as new/m's
    assert.ok(stored['new/ft']! >= MiB, `stored ${stored['new/ft']}`)
    assert.ok(stored['new/ft']! <= MiB + 16 * 1024, `stored ${stored['new/ft']}: more than the changed tensor and a node`)
    assert.ok(stored['new/m']! >= files['new/m']!.length, `new/m stored ${stored['new/m']}`)
  })

  it('get and verify read both kinds in the switched zoo (verify checks them in shared windows, in the workers)', async () => {
    for (const name of Object.keys(files)) {
      const out = join(work, 'out-a', name)
      await ok(zoo(a, ['get', name, '--out', out]), `get ${name}`)
      const file = fileNames[name]!
      assert.ok(Buffer.from(await readFile(join(out, file))).equals(Buffer.from(files[name]!)), name)
    }
    const v = JSON.parse((await ok(zoo(a, ['verify', '--json']), 'verify')).stdout) as { ok: boolean; problems: unknown[] }
    assert.equal(v.ok, true)
    assert.deepEqual(v.problems, [])
  })

  it('a clone gets both kinds from the path remote, verifies them, and a flipped byte in a BLAKE3 chunk is found by verify and get and repaired from the remote', async () => {
    await ok(zoo(work, ['clone', bare, 'b']), 'clone')
    const b = join(work, 'b')
    assert.equal(JSON.parse(await readFile(join(b, '.zoo', 'config.json'), 'utf8')).chunk_hash, 'blake3', 'the setting travels with git')
    for (const name of ['old/m', 'new/m']) {
      await ok(zoo(b, ['get', name, '--out', join(work, 'out-b', name)]), `get ${name} in the clone`)
      assert.ok((await readFile(join(work, 'out-b', name, 'model.safetensors'))).equals(Buffer.from(files[name]!)), name)
    }
    await ok(zoo(b, ['verify']), 'verify the clone')
    // damage one byte of a BLAKE3 chunk of new/m (t2's, which no other model holds)
    const target = (await chunksOf(b, 'new/m')).chunks.at(-1)!
    assert.match(target, B3)
    const repo = await Repo.open(b, processCtx())
    const storeRoot = await repo.storeRoot()
    const store = await LocalStore.open(storeRoot)
    const e = store.entries().find(([c]) => c.toString() === target)![1]
    await store.close()
    await flipByte(join(storeRoot, 'packs', e.pack), e.offset + 7)
    const v = await zoo(b, ['verify'])
    assert.equal(v.code, 1, v.stderr)
    assert.ok(v.stderr.includes(`${target}: corrupt`), v.stderr)
    const g = await zoo(b, ['get', 'new/m', '--out', join(work, 'out-b2'), '--json'])
    assert.equal(g.code, 1, g.stderr)
    assert.equal(JSON.parse(g.stdout).error.code, 'E_CORRUPT_OBJECT', g.stdout)
    await assert.rejects(stat(join(work, 'out-b2', 'model.safetensors')), 'a damaged model writes nothing')
    const r = JSON.parse((await ok(zoo(b, ['verify', '--repair', '--json']), 'verify --repair')).stdout) as { ok: boolean; repaired: Array<{ object: string; problem: string; from: string }> }
    assert.equal(r.ok, true)
    assert.deepEqual(r.repaired.map((x) => [x.object, x.problem, x.from]), [[target, 'corrupt', 'origin']])
    await ok(zoo(b, ['get', 'new/m', '--out', join(work, 'out-b3')]), 'get after the repair')
    assert.ok((await readFile(join(work, 'out-b3', 'model.safetensors'))).equals(Buffer.from(files['new/m']!)))
  })

  it('a lazy clone gets both kinds through HTTP ranges; a remote serving wrong bytes for a BLAKE3 CID is refused', async () => {
    let good: StaticServer | undefined
    let bad: StaticServer | undefined
    try {
      good = await startStaticServer(objects)
      await ok(zoo(work, ['clone', '--lazy', bare, 'c']), 'lazy clone')
      const c = join(work, 'c')
      await git(c, 'config', 'zoo.remote.origin.url', good.url)
      for (const name of ['old/m', 'new/m']) {
        await ok(zoo(c, ['get', name, '--out', join(work, 'out-c', name)]), `lazy get ${name}`)
        assert.ok((await readFile(join(work, 'out-c', name, 'model.safetensors'))).equals(Buffer.from(files[name]!)), name)
      }
      assert.ok(good.requests.some((q) => q.headers.range && q.url.endsWith('.pack')), 'objects came as ranges of packs')
      await ok(zoo(c, ['verify']), 'verify the lazy clone')

      // a copy of the remote with one byte of a BLAKE3 chunk of new/m changed, served over HTTP
      const copy = join(work, 'objects-bad')
      await cp(objects, copy, { recursive: true })
      const target = (await chunksOf(a, 'new/m')).chunks[1]!
      assert.match(target, B3)
      await poisonInPack(copy, target)
      bad = await startStaticServer(copy)
      await ok(zoo(work, ['clone', '--lazy', bare, 'e']), 'lazy clone e')
      const e = join(work, 'e')
      await git(e, 'config', 'zoo.remote.origin.url', bad.url)
      const g = await zoo(e, ['get', 'new/m', '--out', join(work, 'out-e'), '--json'])
      assert.equal(g.code, 1, g.stderr + g.stdout)
      assert.equal(JSON.parse(g.stdout).error.code, 'E_CORRUPT_OBJECT', g.stdout)
      assert.ok(g.stdout.includes(target), g.stdout)
      await assert.rejects(stat(join(work, 'out-e', 'model.safetensors')), 'nothing written from bad bytes')
      // sha2-256 chunks from the same remote are still good
      await ok(zoo(e, ['get', 'old/m', '--out', join(work, 'out-e-old')]), 'get old/m from the damaged remote')
    } finally {
      await good?.close()
      await bad?.close()
    }
  })

  it('a chunk_hash that is neither "blake3" nor "sha2-256" is E_CONFIG (exit 3), naming the file and the accepted values', async () => {
    const { dir, cleanup } = await tempRepo('zoo-b3-config-')
    try {
      await ok(zoo(dir, ['init']), 'init')
      await setConfig(dir, (c) => { c.chunk_hash = 'sha3-256' })
      await writeFile(join(dir, 'w.safetensors'), model('x'))
      const j = await zoo(dir, ['add', 'w.safetensors', '--name', 'x/y', '--json'])
      assert.equal(j.code, 3, j.stderr + j.stdout)
      const err = JSON.parse(j.stdout).error as { code: string; message: string }
      assert.equal(err.code, 'E_CONFIG')
      for (const s of ['.zoo/config.json', '"chunk_hash"', '"sha3-256"', '"blake3"', '"sha2-256"']) assert.ok(err.message.includes(s), `${s} in: ${err.message}`)
      const h = await zoo(dir, ['add', 'w.safetensors', '--name', 'x/y'])
      assert.equal(h.code, 3)
      assert.match(h.stderr, /"chunk_hash" is "sha3-256"; it must be "blake3" or "sha2-256"/)
      assert.equal((await git(dir, 'log', '--oneline')).trim().split('\n').length, 1, 'nothing was committed')
    } finally { await cleanup() }
  })
})

test('import prepares chunks (in its worker threads) with the zoo\'s hash: BLAKE3 in a new zoo, sha2-256 in one without the key', async () => {
  const pop = await mkdtemp(join(tmpdir(), 'zoo-b3-pop-'))
  try {
    await generatePopulation(pop, {
      seeds: [1], learningRates: [0.1], activations: ['relu'], hidden: [8], epochs: 2, finetuneEpochs: 2, onnx: false,
      pretrain: { seed: 1, lr: 0.1, activation: 'gelu', init: 'kaiming_uniform', epochs: 2 },
    })
    for (const [hash, form] of [['blake3', B3], ['sha2-256', SHA]] as const) {
      const { dir, cleanup } = await tempRepo('zoo-b3-import-')
      try {
        await ok(zoo(dir, ['init']), 'init')
        if (hash === 'sha2-256') await setConfig(dir, (c) => { delete c.chunk_hash })
        await git(dir, 'add', '-A')
        await git(dir, 'commit', '-q', '-m', 'zoo')
        const r = JSON.parse((await ok(zoo(dir, ['import', pop, '--prefix', 'demo', '--json']), `import (${hash})`)).stdout) as { promoted: number; checkpoints: number }
        assert.ok(r.promoted >= 4 && r.checkpoints >= 12, JSON.stringify(r))
        const store = await LocalStore.open(await (await Repo.open(dir, processCtx())).storeRoot())
        try {
          const raw = store.entries().map(([c]) => c).filter((c) => c.code === RAW).map(String)
          assert.ok(raw.length >= r.checkpoints, `${raw.length} chunks`)
          for (const c of raw) assert.match(c, form, hash)
        } finally { await store.close() }
        await ok(zoo(dir, ['verify']), `verify (${hash})`)
      } finally { await cleanup() }
    }
  } finally { await rm(pop, { recursive: true, force: true }) }
})

// ---- below the CLI ----

test('CID forms: raw + blake3 is trusted and checked with BLAKE3; dag-cbor + blake3 and short digests are refused', () => {
  const bytes = seededBytes(1000, 'cid')
  const b3 = chunkCid('blake3', bytes)
  assert.match(b3.toString(), B3)
  assert.equal(b3.multihash.code, BLAKE3)
  assert.deepEqual(parseCid(b3.toString()).bytes, b3.bytes)
  verifyBytes(b3, bytes)
  // BLAKE3 of the empty input (the reference value of the BLAKE3 paper's test vectors)
  assert.equal(Buffer.from(chunkCid('blake3', new Uint8Array(0)).multihash.digest).toString('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
  const flipped = Buffer.from(bytes); flipped[500]! ^= 1
  assert.throws(() => verifyBytes(b3, flipped), (e: Error & { code?: string }) => e.code === 'E_CORRUPT_OBJECT')
  // a BLAKE3 CID carrying the sha2-256 digest of the bytes does not match them
  assert.throws(() => verifyBytes(cidFromDigest(RAW, digestWith(SHA2_256, bytes), BLAKE3), bytes), (e: Error & { code?: string }) => e.code === 'E_CORRUPT_OBJECT')
  const dagB3 = cidFromDigest(DAG_CBOR, blake3(bytes), BLAKE3)
  assert.throws(() => parseCid(dagB3.toString()), (e: Error & { code?: string }) => e.code === 'E_BAD_CID')
  assert.throws(() => verifyBytes(dagB3, bytes), (e: Error & { code?: string }) => e.code === 'E_BAD_CID')
  assert.equal(chunkCid('sha2-256', bytes).toString(), cidOf(RAW, bytes).toString())
  assert.match(cidOf(RAW, bytes).toString(), SHA)
})

test('node marker: vectors; a BLAKE3 leaf round-trips through both readers; a marker that does not match its links is E_NODE', () => {
  const text = (t: string) => new TextEncoder().encode(t)
  const sha = [cidOf(RAW, text('chunk one')), cidOf(RAW, text('chunk two!'))]
  const b3 = [chunkCid('blake3', text('chunk one')), chunkCid('blake3', text('chunk two!'))]
  // sha2-256 leaf and branch: the CIDs the git-zoo from before BLAKE3 (3bd9545) gives for these nodes
  const shaLeaf = encodeNode({ size: 19, leaf: true, links: [[sha[0]!, 9], [sha[1]!, 10]] })
  assert.equal(shaLeaf.cid.toString(), 'bafyreihfi7ptklsb3ogpwwf2alzykj3pvkqa7a5p2mqt3dqlktxid4macq')
  assert.equal(encodeNode({ size: 38, leaf: false, links: [[shaLeaf.cid, 19], [shaLeaf.cid, 19]] }).cid.toString(), 'bafyreicxxjumt3zw3kl75ax2fyv6dzggzazwqoypz5vy4gc6lvmbq3j6jm')
  // the BLAKE3 leaf: map of four keys, "hash": "blake3" first (canonical order), then as before
  const b3Leaf = encodeNode({ size: 19, leaf: true, links: [[b3[0]!, 9], [b3[1]!, 10]] })
  assert.equal(b3Leaf.cid.toString(), 'bafyreieiz4742ke4rnacq5nbs32luq33oxm5cgqhzkgu2ehebe6ushv7wu')
  assert.equal(Buffer.from(b3Leaf.bytes.subarray(0, 18)).toString('hex'), 'a4646861736866626c616b6533646c656166')
  const b3Branch = encodeNode({ size: 38, leaf: false, links: [[b3Leaf.cid, 19], [b3Leaf.cid, 19]] })
  assert.equal(b3Branch.cid.toString(), 'bafyreigud7x7pjxiheliq5boqwh6gycc3jnhlowb3ii3gdg3dfbkuy32ya')
  assert.equal(b3Branch.bytes[0], 0xa3, 'a branch node carries no marker')
  for (const n of [shaLeaf, b3Leaf, b3Branch]) {
    const slow = decodeNode(n.bytes, n.cid)
    assert.deepEqual(Object.keys(slow).sort(), ['leaf', 'links', 'size'])
    const fast = readFileNodeFast(n.bytes)
    assert.ok(fast, `the one-pass reader takes ${n.cid}`)
    const norm = (x: FileNode) => ({ size: x.size, leaf: x.leaf, links: x.links.map(([c, l]) => [c.toString(), l]) })
    assert.deepEqual(norm(fast), norm(slow))
    assert.deepEqual(encodeNode(slow).bytes, n.bytes, 're-encoding gives the same bytes')
  }
  // a git-zoo from before BLAKE3 takes a node only when its keys are exactly leaf,links,size
  assert.deepEqual(Object.keys(decodeStrict<Record<string, unknown>>(b3Leaf.bytes)).sort().join(','), 'hash,leaf,links,size')
  // mismatches, written by hand (encodeNode never writes them): E_NODE from decodeNode, null from the fast reader
  const E_NODE = (why: RegExp) => (e: Error & { code?: string }) => e.code === 'E_NODE' && why.test(e.message)
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['BLAKE3 links, no marker', { size: 19, leaf: true, links: [[b3[0], 9], [b3[1], 10]] }, /2 of its 2 links are BLAKE3 chunks but it lacks/],
    ['marker over sha2-256 links', { hash: 'blake3', size: 19, leaf: true, links: [[sha[0], 9], [sha[1], 10]] }, /marked hash "blake3" but 2 of its 2 links are not BLAKE3/],
    ['marker over mixed links', { hash: 'blake3', size: 19, leaf: true, links: [[b3[0], 9], [sha[1], 10]] }, /but 1 of its 2 links are not BLAKE3/],
    ['mixed links, no marker', { size: 19, leaf: true, links: [[sha[0], 9], [b3[1], 10]] }, /1 of its 2 links are BLAKE3 chunks but it lacks/],
    ['another hash named', { hash: 'sha2-256', size: 19, leaf: true, links: [[sha[0], 9], [sha[1], 10]] }, /hash is "sha2-256", not "blake3"/],
    ['marker on a branch', { hash: 'blake3', size: 19, leaf: false, links: [[b3Leaf.cid, 19]] }, /a branch node carries a hash marker/],
    ['marker, no links', { hash: 'blake3', size: 0, leaf: true, links: [] }, /marked hash "blake3" but has no links/],
  ]
  for (const [what, value, why] of bad) {
    const bytes = encodeCanonical(value)
    const cid = cidOf(DAG_CBOR, bytes)
    assert.throws(() => decodeNode(bytes, cid), E_NODE(why), what)
    assert.equal(readFileNodeFast(bytes), null, what)
  }
  assert.throws(() => encodeNode({ size: 19, leaf: true, links: [[b3[0]!, 9], [sha[1]!, 10]] }), E_NODE(/cannot mix BLAKE3 and sha2-256 chunks \(1 of 2/))
})

test('pack index keys: one digest under the three forms gives three keys (tags 0x55, 0x71, 0x1e) that name their CIDs back', () => {
  const digest = seededBytes(32, 'key')
  const forms = [cidFromDigest(RAW, digest), cidFromDigest(DAG_CBOR, digest), cidFromDigest(RAW, digest, BLAKE3)]
  const keys = forms.map((c) => keyOf(c)!)
  assert.deepEqual(keys.map((k) => k[32]), [0x55, 0x71, TAG_RAW_BLAKE3])
  assert.equal(TAG_RAW_BLAKE3, 0x1e)
  assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, 3)
  for (const [i, c] of forms.entries()) {
    assert.equal(keys[i]!.length, 33)
    assert.ok(keyOfCidBytes(c.bytes)!.equals(keys[i]!))
    assert.equal(cidAt(keys[i]!, 0).toString(), c.toString())
  }
  assert.equal(keyOf(cidFromDigest(DAG_CBOR, digest, BLAKE3)), null)
})

test('the local store holds both chunk kinds of the same bytes side by side, through its multi-pack index, a reopen and a rebuild of its indexes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-b3-store-'))
  try {
    const bytes = Array.from({ length: 20 }, (_, i) => seededBytes(3000 + i, `obj${i}`))
    let store = await LocalStore.open(dir)
    for (const b of bytes) { await store.put(chunkCid('sha2-256', b), b); await store.flush(); await store.put(chunkCid('blake3', b), b); await store.flush() }
    await store.close()
    store = await LocalStore.open(dir)
    try {
      for (const b of bytes) {
        for (const h of ['sha2-256', 'blake3'] as const) assert.ok(Buffer.from(await store.get(chunkCid(h, b))).equals(b), h)
      }
      const listed = store.entries().map(([c]) => c.toString())
      assert.equal(listed.length, 40)
      assert.equal(listed.filter((c) => B3.test(c)).length, 20)
    } finally { await store.close() }
    // every index damaged (and the multi-pack index gone): rebuilt from the packs' records, each
    // checked against its CID with its own hash
    const packs = join(dir, 'packs')
    await rm(join(packs, 'multi-pack-index'), { force: true })
    const idx = (await readdir(packs)).filter((n) => n.endsWith('.idx'))
    assert.ok(idx.length >= 2, `${idx.length} indexes`)
    for (const n of idx) await flipByte(join(packs, n), 20)
    store = await LocalStore.open(dir)
    try {
      for (const b of bytes) {
        for (const h of ['sha2-256', 'blake3'] as const) assert.ok(Buffer.from(await store.get(chunkCid(h, b))).equals(b), `${h} after the rebuild`)
      }
    } finally { await store.close() }
  } finally { await rm(dir, { recursive: true, force: true }) }
})

test('hashRanges: each range with its own hash, in the workers and on the calling thread', async () => {
  for (const inline of [false, true]) {
    const pool = new HashPool(1)
    try {
      const ring = await pool.slabs(2, 1 << 20, { stream: false, inline })
      const slab = await ring.acquire()
      const buf = ring.slabs[slab]!
      buf.set(seededBytes(1 << 20, 'ranges'))
      const offs = [0, 1000, 70000, 300000, 300000, 999999]
      const lens = [1000, 69000, 230000, 1, 0, 1]
      const codes = [SHA2_256, BLAKE3, BLAKE3, SHA2_256, BLAKE3, SHA2_256]
      const want = (k: number, code: number): string => Buffer.from(digestWith(code, buf.subarray(offs[k]!, offs[k]! + lens[k]!))).toString('hex')
      const mixed = await ring.hashRanges(slab, offs, lens, codes)
      const all3 = await ring.hashRanges(slab, offs, lens, BLAKE3)
      const allSha = await ring.hashRanges(slab, offs, lens)
      for (let k = 0; k < offs.length; k++) {
        const at = (d: Uint8Array): string => Buffer.from(d.subarray(32 * k, 32 * k + 32)).toString('hex')
        assert.equal(at(mixed), want(k, codes[k]!), `mixed ${k} (inline ${inline})`)
        assert.equal(at(all3), want(k, BLAKE3), `blake3 ${k} (inline ${inline})`)
        assert.equal(at(allSha), want(k, SHA2_256), `sha2-256 ${k} (inline ${inline})`)
      }
      assert.equal(Buffer.from(await pool.hash(buf.subarray(0, 5000), BLAKE3)).toString('hex'), Buffer.from(blake3(buf.subarray(0, 5000))).toString('hex'))
      ring.release(slab)
    } finally { await pool.close() }
  }
})
