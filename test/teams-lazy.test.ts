/**
 * Lazy clones and relative zoo remote paths, through the real CLI and real git:
 * - a lazy clone runs diff, eval, soup and agree, fetching (verified) only what they read, and gives
 *   the same answers as the clone that promoted the models; verify counts unfetched objects apart;
 *   a damaged fetched object is repaired without fetching the rest; a later fetch still completes
 *   the store (fetched nodes were not stored ahead of their chunks);
 * - a zoo remote recorded as a relative path resolves to the same folder from clones at other
 *   depths and from a clone of a clone; a folder that is not there is named as missing.
 */
import { before, after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, zoo, type Run } from './cli.js'
import { encodeMlpOnnx } from '../src/onnx/encode.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { encodeNpy } from '../src/demo/data.js'
import { dataset } from './eval-fixtures.js'
import { LocalStore } from '../src/cas/local.js'

const C = 8

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

const f32 = (a: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(a).buffer)

let work: string
let a: string
let bare: string
let objects: string

/**
 * work/origin.git (bare), work/a (the promoting clone, git remote ../origin.git), the zoo remote
 * recorded as the relative path ../shared/zoo-objects, two models with an ONNX graph and a
 * safetensors file holding a 2 MiB tensor (several chunks under a node), pushed.
 */
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-lazy-'))
  bare = join(work, 'origin.git')
  a = join(work, 'a')
  objects = join(work, 'shared', 'zoo-objects')
  await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
  await git(work, 'init', '-q', '-b', 'main', a)
  for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']]) await git(a, 'config', k!, v!)
  await git(a, 'remote', 'add', 'origin', '../origin.git')
  await ok(zoo(a, ['init']), 'init')
  await mkdir(join(a, 'sub'))
  // typed relative to where the user is (a/sub), recorded relative to the zoo's home (origin.git)
  await ok(zoo(join(a, 'sub'), ['remote', 'add', 'origin', '../../shared/zoo-objects']), 'remote add')
  const config = JSON.parse(await readFile(join(a, '.zoo', 'config.json'), 'utf8'))
  assert.equal(config.remotes.origin.url, '../shared/zoo-objects')
  await git(a, 'commit', '-q', '-m', 'zoo set up')
  await git(a, 'push', '-q', '-u', 'origin', 'main')
  const big = 512 * 1024 // 2 MiB of float32: at least 2 chunks and a node
  for (const [name, seed] of [['p', 1], ['q', 2]] as const) {
    const w = new Float32Array(C * C).map((_, i) => Math.sin(seed * (i + 1)))
    const b = new Float32Array(C).map((_, i) => (seed === 1 ? i / 3 : -i / 7))
    const body = new Float32Array(big).map((_, i) => Math.cos(i * 0.001) + (seed === 2 && i % 4096 === 0 ? 0.5 : 0))
    const t = [{ name: 'layers.0.weight', shape: [C, C], data: w }, { name: 'layers.0.bias', shape: [C], data: b }]
    await mkdir(join(a, name))
    await writeFile(join(a, name, 'model.onnx'), encodeMlpOnnx(t, { activation: 'relu' }))
    await writeFile(join(a, name, 'model.safetensors'), encodeSafetensors([
      ...t.map((x) => ({ name: x.name, dtype: 'F32', shape: x.shape, data: f32(x.data) })),
      { name: 'body', dtype: 'F32', shape: [big], data: f32(body) }]))
    await ok(zoo(a, ['add', name, '--name', `lazy/${name}`, '--dataset', 'glyphs@1']), `add ${name}`)
  }
  await ok(zoo(a, ['push']), 'push')
})

after(async () => { await rm(work, { recursive: true, force: true }) })

async function writeData(dir: string): Promise<void> {
  const { x, y, n } = dataset()
  await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
  await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
}

describe('a lazy clone fetches on demand', () => {
  it('diff, eval, soup and agree work in a lazy clone at another depth and answer as the full clone does; verify counts unfetched objects apart', async () => {
    const c = join(work, 'elsewhere', 'deep', 'c')
    await ok(zoo(work, ['clone', '--lazy', bare, join('elsewhere', 'deep', 'c')]), 'lazy clone')
    await writeData(a); await writeData(c)

    const v0 = await zoo(c, ['verify', '--json'])
    assert.equal(v0.code, 0, v0.stderr)
    const j0 = JSON.parse(v0.stdout)
    assert.deepEqual(j0.problems, [])
    assert.equal(j0.not_fetched.length, 4, JSON.stringify(j0.not_fetched)) // two files per model, nothing here
    assert.ok(j0.not_fetched.every((x: { model: string; object: string }) => /^lazy\/[pq]@v1$/.test(x.model) && /^baf/.test(x.object)))
    const h0 = await zoo(c, ['verify'])
    assert.equal(h0.code, 0)
    assert.match(h0.stderr, /no problems; 4 objects not fetched yet/)

    const diffA = await ok(zoo(a, ['diff', 'lazy/p', 'lazy/q', '--json']), 'diff in a')
    const diffC = await ok(zoo(c, ['diff', 'lazy/p', 'lazy/q', '--json']), 'diff in the lazy clone')
    assert.deepEqual(JSON.parse(diffC.stdout), JSON.parse(diffA.stdout))
    const weights = JSON.parse(diffC.stdout).weights as Array<{ tensors: Array<{ name: string; identical: boolean; l2: number }> }>
    const body = weights.flatMap((w) => w.tensors).find((t) => t.name === 'body')
    assert.ok(body && !body.identical && body.l2 > 0, JSON.stringify(body)) // the 2 MiB tensor was read through the lazy store

    // diff read the 2 MiB tensors chunk by chunk; their nodes were kept in memory, not stored
    const roots: string[] = []
    for (const m of ['p', 'q']) {
      const man = JSON.parse(await readFile(join(c, 'models', 'lazy', m, 'v1', 'manifest.json'), 'utf8'))
      roots.push(man.files.find((f: { path: string }) => f.path === 'model.safetensors').root)
    }
    assert.ok(roots.every((r) => r.startsWith('bafyrei')), 'the safetensors files are trees of chunks')
    const afterDiff = JSON.parse((await ok(zoo(c, ['verify', '--json']), 'verify after diff')).stdout)
    assert.deepEqual(roots.filter((r) => afterDiff.not_fetched.some((x: { object: string }) => x.object === r)), roots)

    // a damaged object that was fetched is a problem; repair replaces it and fetches nothing else.
    // The victim is one verify reaches: a file that is one chunk (the ONNX graph, read by diff), its
    // root (the safetensors chunks fetched are below roots that were not stored, which verify counts apart)
    const oneChunk = new Set<string>()
    for (const m of ['p', 'q']) {
      const man = JSON.parse(await readFile(join(c, 'models', 'lazy', m, 'v1', 'manifest.json'), 'utf8'))
      for (const f of man.files as Array<{ root: string }>) if (f.root.startsWith('bafk')) oneChunk.add(f.root)
    }
    const store = await LocalStore.open(join(c, '.git', 'zoo'))
    const [victim, at] = store.entries().find(([cid]) => oneChunk.has(cid.toString()))!
    await store.close()
    const fd = await open(join(c, '.git', 'zoo', 'packs', at.pack), 'r+')
    const one = Buffer.alloc(1)
    await fd.read(one, 0, 1, at.offset); one[0]! ^= 0xff; await fd.write(one, 0, 1, at.offset)
    await fd.close()
    const damaged = await zoo(c, ['verify', '--json'])
    assert.equal(damaged.code, 1, damaged.stderr)
    assert.deepEqual(JSON.parse(damaged.stdout).problems.map((x: { object: string; problem: string }) => [x.object, x.problem]), [[victim.toString(), 'corrupt']])
    const repaired = JSON.parse((await ok(zoo(c, ['verify', '--repair', '--json']), 'repair in the lazy clone')).stdout)
    assert.deepEqual(repaired.repaired.map((x: { object: string }) => x.object), [victim.toString()])
    assert.deepEqual(repaired.not_fetched, afterDiff.not_fetched, 'what was not fetched is left alone')

    const evalA = await ok(zoo(a, ['eval', 'lazy/p', '--data', 'd.x.npy', '--no-record', '--json']), 'eval in a')
    const evalC = await ok(zoo(c, ['eval', 'lazy/p', '--data', 'd.x.npy', '--no-record', '--json']), 'eval in the lazy clone')
    assert.deepEqual(JSON.parse(evalC.stdout).metrics, JSON.parse(evalA.stdout).metrics)
    assert.equal(JSON.parse(evalC.stdout).predictions_sha256, JSON.parse(evalA.stdout).predictions_sha256)

    const agreeA = await ok(zoo(a, ['agree', 'lazy/p', 'lazy/q', '--data', 'd.x.npy', '--json']), 'agree in a')
    const agreeC = await ok(zoo(c, ['agree', 'lazy/p', 'lazy/q', '--data', 'd.x.npy', '--json']), 'agree in the lazy clone')
    assert.equal(JSON.parse(agreeC.stdout).rate, JSON.parse(agreeA.stdout).rate)

    const soupA = JSON.parse((await ok(zoo(a, ['soup', 'lazy/p', 'lazy/q', '--name', 'lazy/pq', '--json']), 'soup in a')).stdout)
    const soupC = JSON.parse((await ok(zoo(c, ['soup', 'lazy/p', 'lazy/q', '--name', 'lazy/pq', '--json']), 'soup in the lazy clone')).stdout)
    assert.deepEqual(soupC.files, soupA.files, 'the same soup, byte for byte')

    // what was read is here now; nodes were not stored ahead of their chunks, so fetch completes the store
    const v1 = JSON.parse((await ok(zoo(c, ['verify', '--json']), 'verify after reads')).stdout)
    assert.ok(v1.not_fetched.length < 4, JSON.stringify(v1.not_fetched))
    await ok(zoo(c, ['fetch']), 'fetch')
    const v2 = JSON.parse((await ok(zoo(c, ['verify', '--json']), 'verify after fetch')).stdout)
    assert.deepEqual(v2, { ok: true, problems: [], not_fetched: [] })
    await ok(zoo(c, ['get', 'lazy/q', '--out', 'o']), 'get')
    assert.deepEqual(await readFile(join(c, 'o', 'model.safetensors')), await readFile(join(a, 'q', 'model.safetensors')))
  })
})

describe('relative zoo remote paths', () => {
  it('resolve to the same folder from clones at other depths and from a clone of a clone; a missing folder is named', async () => {
    const c1 = join(work, 'c1')
    const c2 = join(work, 'x', 'y', 'z', 'c2')
    const c3 = join(work, 'p', 'c3')
    await git(work, 'clone', '-q', bare, 'c1') // a plain git clone: its zoo remote resolves all the same
    await ok(zoo(work, ['clone', bare, join('x', 'y', 'z', 'c2')]), 'clone at depth 4 (fetches every object)')
    await ok(zoo(work, ['clone', c1, join('p', 'c3')]), 'clone of a clone (fetches every object)')
    for (const dir of [c1, c2, c3]) {
      const list = JSON.parse((await ok(zoo(dir, ['remote', 'list', '--json']), 'remote list')).stdout)
      assert.deepEqual(list.remotes.map((r: { url: string; path: string }) => [r.url, r.path]), [['../shared/zoo-objects', objects]], dir)
    }
    for (const dir of [c2, c3]) {
      await ok(zoo(dir, ['get', 'lazy/p', '--out', 'o']), `get in ${dir}`)
      assert.deepEqual(await readFile(join(dir, 'o', 'model.safetensors')), await readFile(join(a, 'p', 'model.safetensors')))
    }
    assert.match((await ok(zoo(c2, ['remote', 'list']), 'remote list')).stdout, new RegExp(`^origin\\t\\.\\./shared/zoo-objects\\t\\(${objects.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`))

    // the folder moved away: named as missing, with the fix
    const moved = join(work, 'shared-moved')
    await rename(join(work, 'shared'), moved)
    try {
      const lazy = join(work, 'l')
      await ok(zoo(work, ['clone', '--lazy', bare, 'l']), 'lazy clone')
      const fetch = await zoo(lazy, ['fetch'])
      assert.equal(fetch.code, 3, fetch.stderr)
      assert.ok(fetch.stderr.includes(`zoo remote origin at ${objects}: the folder does not exist (recorded as "../shared/zoo-objects" in .zoo/config.json, resolved against the zoo's home repository ${bare})`), fetch.stderr)
      assert.match(fetch.stderr, /git config zoo\.remote\.origin\.url <absolute path>/)
      // a read in a lazy clone says the same about the object it needed
      const diff = await zoo(lazy, ['diff', 'lazy/p', 'lazy/q'])
      assert.equal(diff.code, 3, diff.stderr)
      assert.match(diff.stderr, /is not in the local store .* no zoo remote gave a good copy: origin \(\.\.\/shared\/zoo-objects\): zoo remote origin at .*: the folder does not exist/)
      // the fix the message names
      await git(lazy, 'config', 'zoo.remote.origin.url', join(moved, 'zoo-objects'))
      await ok(zoo(lazy, ['diff', 'lazy/p', 'lazy/q']), 'diff with the clone pointed at the moved folder')
    } finally {
      await rename(moved, join(work, 'shared'))
    }
  })
})
