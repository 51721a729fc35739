/**
 * Checkpoint nodes (manifest format 2, spec/format.md "Checkpoint nodes"), through the real CLI and
 * real git: an imported Model Zoos-shaped population (Ray Tune trials of safetensors checkpoints)
 * commits manifests that link a sealed dag-cbor node instead of listing every checkpoint; get,
 * get --checkpoint, show, find on history, soup --last-k, diff, gc, verify (a damaged or missing node found and
 * repaired), push and a lazy clone read through the node; a zoo written in format 1 (every file and
 * the history in the manifest) still reads, verifies and pushes.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, mkdir, mkdtemp, rm, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { flipByte, zoo, zooWithOrigin, git, run, type Run } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { computeSeal, serializeManifest, validateManifest, type Manifest } from '../src/manifest/manifest.js'
import { LocalStore, parseIndex, encodeIndex } from '../src/cas/local.js'
import { PY } from './torch-helpers.js'

const EPOCHS = [0, 1, 2, 3]
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A checkpoint of a small MLP: a frozen body equal in every epoch, a head that moves. */
function checkpoint(trial: number, epoch: number): Uint8Array {
  const body = new Float32Array(4096).map((_, j) => Math.sin(j + trial))
  const head = new Float32Array(256).map((_, j) => Math.cos(j * (epoch + 1) + trial))
  return encodeSafetensors([
    { name: 'body.weight', dtype: 'F32', shape: [4096], data: new Uint8Array(body.buffer) },
    { name: 'head.weight', dtype: 'F32', shape: [256], data: new Uint8Array(head.buffer) },
  ])
}

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`)
  return r
}

let work: string
let a: string
let src: string
let bare: string
const sums = new Map<string, string>()
const T0 = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00000_0_seed-1_2021-03-01'
const T1 = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00001_1_seed-2_2021-03-01'

/** The pack file and offset of an object's bytes in a local store. */
async function whereIs(storeRoot: string, cid: string): Promise<{ path: string; offset: number; length: number }> {
  const store = await LocalStore.open(storeRoot)
  try {
    const e = store.entryOf(CID.parse(cid))
    assert.ok(e, `${cid} is in the store`)
    return { path: store.packPath(e.pack), offset: e.offset, length: e.length }
  } finally { await store.close() }
}


before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-nodes-'))
  a = join(work, 'a')
  bare = join(work, 'origin.git')
  src = join(work, 'src')
  await zooWithOrigin(work, a, bare)
  await ok(zoo(a, ['remote', 'add', 'origin', join(work, 'objects')]), 'remote add')
  await git(a, 'add', '-A')
  await git(a, 'commit', '-q', '-m', 'zoo set up')
  // Ray Tune trial folders as the Model Zoos hold them: params.json, result.json (a line per
  // iteration), progress.csv, checkpoint_00000N/ folders
  const exp = join(src, 'tune_zoo_mnist_uniform')
  for (const [i, seed] of [[0, 1], [1, 2]] as const) {
    const t = join(exp, `NN_tune_trainable_a1b2c_0000${i}_${i}_seed=${seed}_2021-03-01`)
    for (const e of EPOCHS) {
      const dir = join(t, `checkpoint_${String(e).padStart(6, '0')}`)
      await mkdir(dir, { recursive: true })
      const bytes = checkpoint(i, e)
      sums.set(`${i}/${e}`, sha(bytes))
      await writeFile(join(dir, 'model.safetensors'), bytes)
    }
    await writeFile(join(t, 'params.json'), JSON.stringify({ seed, 'model::type': 'MLP', 'optim::lr': 0.001, 'dataset::dump': '/data/mnist_uniform.pt' }))
    await writeFile(join(t, 'result.json'), EPOCHS.map((e) => JSON.stringify({ epoch: e, test_acc: 0.5 + 0.1 * e + 0.01 * seed - (e === 3 ? 0.15 : 0), test_loss: 1 - 0.2 * e, training_iteration: e + 1 })).join('\n') + '\n')
    await writeFile(join(t, 'progress.csv'), 'epoch,test_acc\n0,0.5\n')
  }
  await ok(zoo(a, ['import', src, '--prefix', 'mz']), 'import')
})

after(async () => { await rm(work, { recursive: true, force: true }) })

describe('checkpoint nodes', () => {
  it('an imported trajectory commits a format 2 manifest that links its checkpoint node, and a small card', async () => {
    const dir = join(a, 'models', T0, 'v1')
    const text = await readFile(join(dir, 'manifest.json'), 'utf8')
    const m = validateManifest(JSON.parse(text)) as Manifest
    assert.equal(m.zoo, 2)
    assert.equal(m.history, undefined, 'the history is in the node')
    assert.deepEqual(m.files.map((f) => f.path).sort(), ['progress.csv', 'result.json'], 'no per-checkpoint entry in the manifest')
    assert.equal(CID.parse(m.checkpoints!.node).code, 0x71)
    assert.deepEqual({ ...m.checkpoints!, node: '' }, { node: '', count: 4, files: 4, bytes: m.checkpoints!.bytes, epochs: [0, 3] })
    // final metrics stay; the best value and its epoch too (test_acc peaks at epoch 2)
    assert.equal(m.metrics.test_acc, 0.66)
    assert.deepEqual(m.best!.test_acc, { value: 0.71, epoch: 2 })
    assert.deepEqual(m.best!.test_loss, { value: 1 - 0.2 * 3, epoch: 3 })
    assert.equal(computeSeal(m), m.seal, 'the seal covers the node link')
    assert.doesNotMatch(text, /checkpoint_000001/)
    // the card: no per-checkpoint table, the best epoch, how to get a checkpoint; Hub-readable front matter
    const card = await readFile(join(dir, 'README.md'), 'utf8')
    assert.doesNotMatch(card, /checkpoint_000001|<details>/)
    assert.match(card, /\| test_acc \| 0\.66 \| 0\.71 \(max\) \| 2 \|/)
    assert.match(card, /4 checkpoints \(epochs 0-3\)/)
    assert.match(card, new RegExp(`git zoo get ${T0}@v1 --checkpoint 3`))
    const fm = await run(PY, ['-c', 'import sys, yaml; t = open(sys.argv[1]).read(); d = yaml.safe_load(t.split("---")[1]); print(sorted(d["tags"]))', join(dir, 'README.md')], { cwd: a })
    assert.equal(fm.code, 0, fm.stderr)
    assert.match(fm.stdout, /'trajectory'/)
    const sizes = await Promise.all((await readdir(dir)).map(async (f) => (await stat(join(dir, f))).size))
    assert.ok(sizes.reduce((x, y) => x + y, 0) < 4500, `version folder ${sizes.join(' + ')} bytes`)
  })

  it('show lists every file and the history from the node; get and get --checkpoint write the source bytes', async () => {
    const show = JSON.parse((await ok(zoo(a, ['show', T0, '--json']), 'show')).stdout) as Manifest & { seal_ok: boolean }
    assert.equal(show.seal_ok, true)
    assert.deepEqual(show.files.filter((f) => f.epoch !== undefined).map((f) => [f.path, f.epoch, f.sha256]),
      EPOCHS.map((e) => [`checkpoint_${String(e).padStart(6, '0')}/model.safetensors`, e, sums.get(`0/${e}`)]))
    assert.equal(show.history!.length, 4)
    const human = await ok(zoo(a, ['show', T0, '--files']), 'show --files')
    assert.match(human.stdout, new RegExp(`checkpoint_000002/model.safetensors .* sha256 ${sums.get('0/2')}`))

    const g = JSON.parse((await ok(zoo(a, ['get', T0, '--checkpoint', '2', '--out', join(work, 'cp2'), '--json']), 'get --checkpoint')).stdout) as { files: Array<{ path: string }> }
    assert.deepEqual(g.files.map((f) => f.path), ['checkpoint_000002/model.safetensors'])
    assert.equal(sha(await readFile(join(work, 'cp2', 'checkpoint_000002', 'model.safetensors'))), sums.get('0/2'))
    const bad = await zoo(a, ['get', T0, '--checkpoint', '9'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /no checkpoint for epoch 9 \(it has 0, 1, 2, 3\)/)
    // a plain get writes every file, as for a format 1 manifest
    const all = JSON.parse((await ok(zoo(a, ['get', T1, '--out', join(work, 'all'), '--json']), 'get')).stdout) as { files: Array<{ path: string; sha256: string }> }
    assert.equal(all.files.length, 6)
    assert.equal(sha(await readFile(join(work, 'all', 'checkpoint_000003', 'model.safetensors'))), sums.get('1/3'))
  })

  it('find reads the checkpoint count from the manifest and history columns from the nodes', async () => {
    const f = await ok(zoo(a, ['find', 'checkpoints=4', 'test_acc@2>0.7', 'best.test_acc>=0.71', '--sort', 'seed', '--json']), 'find')
    assert.deepEqual((JSON.parse(f.stdout) as { models: Array<{ name: string }> }).models.map((m) => m.name), [T0, T1])
    const none = await ok(zoo(a, ['find', 'test_acc@3>0.7', '--json']), 'find on history')
    assert.deepEqual((JSON.parse(none.stdout) as { models: unknown[] }).models, [])
  })

  it('soup --last-k and diff read the checkpoints through the node', async () => {
    const s = await ok(zoo(a, ['soup', T0, '--last-k', '2', '--name', 'soups/t0-last2', '--json']), 'soup --last-k')
    const soup = JSON.parse(s.stdout) as { soup: { members: Array<{ epoch?: number }> } }
    assert.deepEqual(soup.soup.members.map((m) => m.epoch), [2, 3])
    const d = JSON.parse((await ok(zoo(a, ['diff', T0, T1, '--epoch', '3', '--json']), 'diff')).stdout) as { weights: Array<{ a: string; b: string }>; files: { changed: string[] } }
    assert.equal(d.weights.length, 1)
    assert.ok(d.files.changed.includes('checkpoint_000003/model.safetensors'), JSON.stringify(d.files))
  })

  it('gc keeps the nodes and what they list; verify finds a damaged or missing node and repairs it from the zoo remote', async () => {
    await ok(zoo(a, ['push']), 'push')
    const gc = JSON.parse((await ok(zoo(a, ['gc', '--grace', '0', '--json']), 'gc')).stdout) as { missing_roots: number }
    assert.equal(gc.missing_roots, 0)
    await ok(zoo(a, ['verify']), 'verify after gc')
    await ok(zoo(a, ['get', T0, '--checkpoint', '1', '--out', join(work, 'after-gc')]), 'get after gc')

    const m = JSON.parse(await readFile(join(a, 'models', T0, 'v1', 'manifest.json'), 'utf8')) as Manifest
    const at = await whereIs(join(a, '.git', 'zoo'), m.checkpoints!.node)
    await flipByte(at.path, at.offset + Math.floor(at.length / 2))
    const v = await zoo(a, ['verify', '--json'])
    assert.equal(v.code, 1, v.stderr)
    const problems = (JSON.parse(v.stdout) as { problems: Array<{ model: string; object: string; problem: string }> }).problems
    assert.deepEqual(problems.map((p) => [p.model, p.object, p.problem]), [[`${T0}@v1`, m.checkpoints!.node, 'corrupt']])
    const g = await zoo(a, ['get', T0, '--checkpoint', '1', '--out', join(work, 'damaged')])
    assert.notEqual(g.code, 0)
    assert.match(g.stderr, /E_CORRUPT_OBJECT|does not match|corrupt/i)
    const r = await zoo(a, ['verify', '--repair', '--json'])
    assert.equal(r.code, 0, r.stderr)
    await ok(zoo(a, ['verify']), 'verify after repair')

    // a node its index no longer lists is missing: verify names it, the repair brings it back
    const t1 = JSON.parse(await readFile(join(a, 'models', T1, 'v1', 'manifest.json'), 'utf8')) as Manifest
    const gone = await whereIs(join(a, '.git', 'zoo'), t1.checkpoints!.node)
    const idx = gone.path.replace(/\.pack$/, '.idx')
    const key = Buffer.from(CID.parse(t1.checkpoints!.node).bytes).toString('latin1')
    const kept = parseIndex(await readFile(idx), 'idx').filter(([k]) => k !== key)
    await rm(idx)
    await writeFile(idx, encodeIndex(kept))
    const v2 = await zoo(a, ['verify', '--json'])
    assert.equal(v2.code, 1, v2.stderr)
    assert.deepEqual((JSON.parse(v2.stdout) as { problems: Array<{ object: string; problem: string }> }).problems.map((p) => [p.object, p.problem]), [[t1.checkpoints!.node, 'missing']])
    const r2 = JSON.parse((await ok(zoo(a, ['verify', '--repair', '--json']), 'repair a missing node')).stdout) as { repaired: Array<{ object: string; problem: string }> }
    assert.deepEqual(r2.repaired.map((x) => [x.object, x.problem]), [[t1.checkpoints!.node, 'missing']])
    await ok(zoo(a, ['get', T1, '--checkpoint', '0', '--out', join(work, 'after-repair')]), 'get after the repair')
    assert.equal(sha(await readFile(join(work, 'after-repair', 'checkpoint_000000', 'model.safetensors'))), sums.get('1/0'))
  })

  it('push, then a lazy clone reads the node from the zoo remote for get --checkpoint and show', async () => {
    await ok(zoo(a, ['push']), 'push')
    const c = join(work, 'lazy')
    await ok(zoo(work, ['clone', '--lazy', bare, c]), 'lazy clone')
    const g = await ok(zoo(c, ['get', T1, '--checkpoint', '1', '--out', join(work, 'lazy-cp1')]), 'lazy get --checkpoint')
    assert.doesNotMatch(g.stderr, /warning/)
    assert.equal(sha(await readFile(join(work, 'lazy-cp1', 'checkpoint_000001', 'model.safetensors'))), sums.get('1/1'))
    const show = JSON.parse((await ok(zoo(c, ['show', T0, '--json']), 'lazy show')).stdout) as Manifest
    assert.equal(show.history!.length, 4)
    const v = JSON.parse((await ok(zoo(c, ['verify', '--json']), 'lazy verify')).stdout) as { problems: unknown[] }
    assert.deepEqual(v.problems, [])
    // a full clone fetches nodes and files; gc there keeps them
    const full = join(work, 'full')
    await ok(zoo(work, ['clone', bare, full]), 'clone')
    await ok(zoo(full, ['gc', '--grace', '0']), 'gc in the clone')
    await ok(zoo(full, ['verify']), 'verify in the clone')
    await ok(zoo(full, ['get', T0, '--checkpoint', '3', '--out', join(work, 'full-cp3')]), 'get in the clone')
    assert.equal(sha(await readFile(join(work, 'full-cp3', 'checkpoint_000003', 'model.safetensors'))), sums.get('0/3'))
  })

  it('a zoo written in format 1 (every file and the history in the manifest) still reads, verifies and pushes', async () => {
    // the format 1 manifest of the same trajectory, as a git-zoo before checkpoint nodes committed it
    const view = JSON.parse((await ok(zoo(a, ['show', T1, '--json']), 'show')).stdout) as Record<string, unknown>
    for (const k of ['seal_ok', 'retired', 'stages', 'evaluations', 'metric_summary', 'curve', 'children', 'checkpoints', 'best', 'seal']) delete view[k]
    const body = { ...view, zoo: 1, name: 'old/traj', version: 1 } as unknown as Manifest
    const old: Manifest = { ...body, seal: computeSeal(body) }
    validateManifest(JSON.parse(serializeManifest(old)))
    await mkdir(join(a, 'models', 'old', 'traj', 'v1'), { recursive: true })
    await writeFile(join(a, 'models', 'old', 'traj', 'v1', 'manifest.json'), serializeManifest(old))
    await writeFile(join(a, 'models', 'old', 'traj', 'v1', 'params.json'), await readFile(join(a, 'models', T1, 'v1', 'params.json')))
    await git(a, 'add', 'models/old')
    await git(a, 'commit', '-q', '-m', 'a format 1 manifest')
    const show = JSON.parse((await ok(zoo(a, ['show', 'old/traj', '--json']), 'show format 1')).stdout) as Manifest & { seal_ok: boolean }
    assert.equal(show.seal_ok, true)
    assert.equal(show.files.length, 6)
    await ok(zoo(a, ['get', 'old/traj', '--checkpoint', '2', '--out', join(work, 'old-cp2')]), 'get --checkpoint format 1')
    assert.equal(sha(await readFile(join(work, 'old-cp2', 'checkpoint_000002', 'model.safetensors'))), sums.get('1/2'))
    await ok(zoo(a, ['verify', 'old/traj']), 'verify format 1')
    const f = await ok(zoo(a, ['find', 'name=old/traj', 'checkpoints=4', 'test_acc@1>0.6', '--json']), 'find format 1')
    assert.equal((JSON.parse(f.stdout) as { models: unknown[] }).models.length, 1)
    await ok(zoo(a, ['push']), 'push format 1')
    const c = join(work, 'old-clone')
    await ok(zoo(work, ['clone', bare, c]), 'clone')
    await ok(zoo(c, ['verify', 'old/traj']), 'verify format 1 in a clone')
  })
})
