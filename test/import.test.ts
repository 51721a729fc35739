/**
 * Trajectories and bulk import through the CLI: a run directory added as one model with epochs and
 * history (frozen tensors stored once), and whole zoos imported in the ViT (demo population),
 * Model Zoos (Ray Tune) and generic layouts, resumed, re-imported and batched.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, mkdir, readdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createHash } from 'node:crypto'
import { tempRepo, zoo, git } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { generatePopulation } from '../src/demo/population.js'

function checkpoint(epoch: number, frozenFloats: number): Uint8Array {
  const frozen = new Float32Array(frozenFloats).map((_, j) => Math.sin(j))
  const head = new Float32Array(1024).map((_, j) => Math.cos(j * (epoch + 1)))
  return encodeSafetensors([
    { name: 'body.weight', dtype: 'F32', shape: [frozenFloats], data: new Uint8Array(frozen.buffer) },
    { name: 'head.weight', dtype: 'F32', shape: [1024], data: new Uint8Array(head.buffer) },
  ])
}

async function initZoo(dir: string): Promise<void> {
  assert.equal((await zoo(dir, ['init'])).code, 0)
  await writeFile(join(dir, '.gitignore'), '.zoo/cache/\nrun/\n')
  await git(dir, 'add', '.gitignore', '.zoo')
  await git(dir, 'commit', '-q', '-m', 'zoo')
}

test('add of a run directory makes a trajectory: epochs, history, frozen tensors stored once, get --checkpoint', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await initZoo(dir)
    const frozenFloats = 64 * 1024 // 256 KiB, identical in every checkpoint
    const sums: string[] = []
    for (let e = 0; e < 4; e++) {
      await mkdir(join(dir, 'run', `checkpoint_${String(e).padStart(6, '0')}`), { recursive: true })
      const bytes = checkpoint(e, frozenFloats)
      sums.push(createHash('sha256').update(bytes).digest('hex'))
      await writeFile(join(dir, 'run', `checkpoint_${String(e).padStart(6, '0')}`, 'model.safetensors'), bytes)
    }
    await writeFile(join(dir, 'run', 'result.json'), JSON.stringify([0, 1, 2, 3].map((e) => ({ epoch: e, test_acc: 0.2 + 0.2 * e, test_loss: 2 - 0.5 * e }))))
    const r = await zoo(dir, ['add', 'run', '--name', 'traj/mlp', '--seed', '7', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { stored_bytes: number; files: Array<{ path: string; size: number }> }
    const read = out.files.filter((f) => f.path.endsWith('.safetensors')).reduce((a, f) => a + f.size, 0)
    // the body is stored once; each epoch adds its 4 KiB head (plus small headers and nodes)
    assert.ok(out.stored_bytes < frozenFloats * 4 + 4 * 4096 + 16 * 1024, `stored ${out.stored_bytes} of ${read} bytes read`)
    assert.ok(read > 4 * frozenFloats * 4)
    // format 2: the checkpoint entries and history are in the checkpoint node, `show` reads them
    const man = JSON.parse(await readFile(join(dir, 'models/traj/mlp/v1/manifest.json'), 'utf8')) as { zoo: number; files: Array<{ path: string; epoch?: number }>; history?: unknown[]; metrics: Record<string, number>; checkpoints: { count: number } }
    assert.equal(man.zoo, 2)
    assert.equal(man.checkpoints.count, 4)
    assert.equal(man.history, undefined)
    assert.deepEqual(man.files.filter((f) => f.epoch !== undefined), [])
    assert.equal(man.metrics.test_acc, 0.8)
    const shown = JSON.parse((await zoo(dir, ['show', 'traj/mlp', '--json'])).stdout) as { files: Array<{ path: string; epoch?: number }>; history: unknown[] }
    assert.deepEqual(shown.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch), [0, 1, 2, 3])
    assert.equal(shown.history.length, 4)
    const g = await zoo(dir, ['get', 'traj/mlp', '--checkpoint', '2', '--out', 'out2', '--json'])
    assert.equal(g.code, 0, g.stderr)
    assert.deepEqual(await readdir(join(dir, 'out2')), ['checkpoint_000002'])
    assert.equal(createHash('sha256').update(await readFile(join(dir, 'out2/checkpoint_000002/model.safetensors'))).digest('hex'), sums[2])
    const f = await zoo(dir, ['find', 'test_acc@1=0.4', 'best.test_loss<=0.5', 'checkpoints=4', '--json'])
    assert.deepEqual((JSON.parse(f.stdout) as { models: Array<{ name: string }> }).models.map((m) => m.name), ['traj/mlp'])
  } finally { await cleanup() }
})

test('import of the demo population (ViT layout): one commit, factors, history, fine-tune lineage; resumable; batches', async () => {
  const { dir, cleanup } = await tempRepo()
  const pop = await mkdtemp(join(tmpdir(), 'zoo-pop-'))
  try {
    await initZoo(dir)
    await generatePopulation(pop, {
      seeds: [1, 2], learningRates: [0.1], activations: ['relu'], hidden: [8], epochs: 2, finetuneEpochs: 2, onnx: false,
      pretrain: { seed: 1, lr: 0.1, activation: 'gelu', init: 'kaiming_uniform', epochs: 2 },
    })
    const before = Number((await git(dir, 'rev-list', '--count', 'HEAD')).trim())
    const r = await zoo(dir, ['import', pop, '--prefix', 'demo', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const rep = JSON.parse(r.stdout) as { layout: string; promoted: number; unchanged: number; commits: string[]; checkpoints: number; bytes: number; stored_bytes: number; models: Array<{ name: string; parent?: string }> }
    assert.equal(rep.layout, 'vit')
    assert.equal(rep.promoted, 6)
    assert.equal(rep.commits.length, 1)
    assert.equal(Number((await git(dir, 'rev-list', '--count', 'HEAD')).trim()), before + 1)
    assert.equal(rep.checkpoints, 6 * 3)
    // frozen bodies of the head-only fine-tunes are stored once; each model also stores its
    // checkpoint node (under 1 KiB here: 3 checkpoints, 3 history records)
    assert.ok(rep.stored_bytes < rep.bytes + rep.promoted * 1024, 'frozen bodies of the head-only fine-tunes are stored once')
    const pre = 'demo/pretraining/mlp-taska-seed1-gelu'
    const kids = rep.models.filter((m) => m.parent === pre).map((m) => m.name).sort()
    assert.deepEqual(kids, ['demo/finetuning/mlp-taska-seed1-gelu/ft-full-lr0.05', 'demo/finetuning/mlp-taska-seed1-gelu/ft-head-lr0.02', 'demo/finetuning/mlp-taska-seed1-gelu/ft-head-lr0.1'])
    const lin = JSON.parse((await zoo(dir, ['lineage', pre, '--json'])).stdout) as { edges: Array<{ from: string; relation: string }> }
    assert.equal(lin.edges.filter((e) => e.from === `${pre}@v1` && e.relation === 'fine-tune').length, 3)
    const show = JSON.parse((await zoo(dir, ['show', 'demo/grid/mlp-seed2-lr0.1-relu-kaiming_uniform', '--json'])).stdout) as { seed: number; dataset: string; arch: string; params: Record<string, unknown>; history: unknown[]; config: { path: string }; files: Array<{ epoch?: number }> }
    assert.equal(show.seed, 2)
    assert.equal(show.dataset, 'taskA')
    assert.equal(show.arch, 'mlp')
    assert.equal(show.params.activation, 'relu')
    assert.equal(show.history.length, 3)
    assert.equal(show.config.path, 'config.json')
    assert.deepEqual([...new Set(show.files.map((f) => f.epoch).filter((e) => e !== undefined))], [0, 1, 2])
    const found = JSON.parse((await zoo(dir, ['find', 'dataset=taskB', `ancestor=${pre}`, '--sort', '-metrics.test_acc', '--json'])).stdout) as { models: unknown[] }
    assert.equal(found.models.length, 3)

    // again: nothing new, no commit
    const again = JSON.parse((await zoo(dir, ['import', pop, '--prefix', 'demo', '--json'])).stdout) as { promoted: number; unchanged: number; commits: string[] }
    assert.deepEqual([again.promoted, again.unchanged, again.commits.length], [0, 6, 0])
    // one run changed (as after an interrupted copy): only it is promoted, as v2
    const res = join(pop, 'grid/mlp-seed1-lr0.1-relu-kaiming_uniform/result.json')
    await writeFile(res, (await readFile(res, 'utf8')).replace(/"test_acc": [0-9.]+/, '"test_acc": 0.99'))
    const third = JSON.parse((await zoo(dir, ['import', pop, '--prefix', 'demo', '--json'])).stdout) as { promoted: number; models: Array<{ name: string; status: string; version?: number }> }
    assert.equal(third.promoted, 1)
    assert.deepEqual(third.models.filter((m) => m.status === 'promoted').map((m) => [m.name, m.version]), [['demo/grid/mlp-seed1-lr0.1-relu-kaiming_uniform', 2]])
    // batches: one commit per two models
    const b = JSON.parse((await zoo(dir, ['import', pop, '--prefix', 'again', '--batch', '2', '--json'])).stdout) as { promoted: number; commits: string[] }
    assert.deepEqual([b.promoted, b.commits.length], [6, 3])
    assert.equal((await git(dir, 'status', '--porcelain')).trim(), '')
  } finally { await cleanup(); await rm(pop, { recursive: true, force: true }) }
})

test('import: Model Zoos (Ray Tune) and generic layouts, dry run, errors', async () => {
  const { dir, cleanup } = await tempRepo()
  const src = await mkdtemp(join(tmpdir(), 'zoo-src-'))
  try {
    await initZoo(dir)
    // Ray Tune trial folders: params.json with ::-keys, result.json as JSON lines with bookkeeping
    const mz = join(src, 'tune_zoo_mnist_uniform')
    for (const [i, seed] of [[0, 1], [1, 2]] as const) {
      const t = join(mz, `NN_tune_trainable_a1b2c_0000${i}_${i}_seed=${seed},lr=0.001_2021-03-01`)
      for (const e of [0, 1, 2]) {
        await mkdir(join(t, `checkpoint_${String(e).padStart(6, '0')}`), { recursive: true })
        await writeFile(join(t, `checkpoint_${String(e).padStart(6, '0')}`, 'checkpoints'), Buffer.alloc(2048, e + 10 * i))
      }
      await writeFile(join(t, 'params.json'), JSON.stringify({ seed, 'model::type': 'CNN', 'model::activation': 'tanh', 'optim::lr': 0.001, 'dataset::dump': '/data/mnist_uniform.pt', training: { epochs: 2 } }))
      await writeFile(join(t, 'result.json'), [0, 1, 2].map((e) => JSON.stringify({ epoch: e, test_acc: 0.5 + 0.1 * e + 0.01 * seed, loss_test: 1 - 0.2 * e, timestamp: 1614556800 + e, time_this_iter_s: 3.2, pid: 4242, training_iteration: e + 1, hostname: 'gpu7' })).join('\n') + '\n')
      await writeFile(join(t, 'progress.csv'), 'epoch,test_acc\n0,0.5\n')
    }
    const dry = await zoo(dir, ['import', src, '--prefix', 'mz', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /would promote {2}mz\/tune_zoo_mnist_uniform\/nn_tune_trainable_a1b2c_00000_0_seed-1-lr-0.001_2021-03-01/)
    assert.equal((await git(dir, 'status', '--porcelain')).trim(), '')
    const r = await zoo(dir, ['import', src, '--prefix', 'mz', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { layout: string }).layout, 'model-zoos')
    const rows = (JSON.parse((await zoo(dir, ['find', 'name~mz/tune_zoo_mnist_uniform/*', 'dataset=mnist_uniform', 'arch=CNN', '--sort', 'seed', '--json'])).stdout) as { models: Array<{ seed: number; params: Record<string, unknown>; metrics: Record<string, number>; checkpoints: number }> }).models
    assert.deepEqual(rows.map((m) => m.seed), [1, 2])
    assert.deepEqual(rows[0]!.params, { 'model::activation': 'tanh', 'optim::lr': 0.001, 'dataset::dump': '/data/mnist_uniform.pt', 'training.epochs': 2 })
    assert.deepEqual(Object.keys(rows[0]!.metrics).sort(), ['loss_test', 'test_acc', 'training_iteration'])
    assert.equal(rows[0]!.checkpoints, 3)

    // generic: weight files anywhere; a model folder inside another is its fine-tune; config parent/relation win
    const gen = join(src, '..', `${src.split('/').pop()}-generic`)
    await mkdir(join(gen, 'base', 'ft-1'), { recursive: true })
    await mkdir(join(gen, 'other'), { recursive: true })
    await writeFile(join(gen, 'base', 'model.safetensors'), checkpoint(0, 256))
    await writeFile(join(gen, 'base', 'ft-1', 'model.safetensors'), checkpoint(1, 256))
    await writeFile(join(gen, 'other', 'weights.bin'), Buffer.alloc(100, 1))
    await writeFile(join(gen, 'other', 'config.json'), JSON.stringify({ parent: 'base', relation: 'distilled', arch: 'tiny' }))
    const g = await zoo(dir, ['import', gen, '--layout', 'generic', '--prefix', 'gen', '--json'])
    assert.equal(g.code, 0, g.stderr)
    const models = (JSON.parse(g.stdout) as { models: Array<{ name: string; parent?: string }> }).models
    assert.deepEqual(models.map((m) => [m.name, m.parent ?? null]), [['gen/base', null], ['gen/base/ft-1', 'gen/base'], ['gen/other', 'gen/base']])
    const lin = JSON.parse((await zoo(dir, ['lineage', 'gen/base', '--json'])).stdout) as { edges: Array<{ to: string; relation: string }> }
    assert.deepEqual(lin.edges.map((e) => `${e.relation} ${e.to}`).sort(), ['distilled gen/other@v1', 'fine-tune gen/base/ft-1@v1'])
    await rm(gen, { recursive: true, force: true })

    assert.equal((await zoo(dir, ['import', join(src, 'nope')])).code, 2)
    assert.equal((await zoo(dir, ['import', src, '--layout', 'weird'])).code, 2)
    const empty = await mkdtemp(join(tmpdir(), 'zoo-empty-'))
    const e = await zoo(dir, ['import', empty])
    assert.equal(e.code, 2)
    assert.match(e.stderr, /no models found/)
    await rm(empty, { recursive: true })
  } finally { await cleanup(); await rm(src, { recursive: true, force: true }) }
})

test('epochs from checkpoint folder and file names', async () => {
  const { epochOf } = await import('../src/importer/run.js')
  const { nameFor } = await import('../src/importer/layout.js')
  assert.equal(epochOf('checkpoint_000012/model.safetensors'), 12)
  assert.equal(epochOf('checkpoint-500/pytorch_model.bin'), 500)
  assert.equal(epochOf('ckpt_3/a/b.pt'), 3)
  assert.equal(epochOf('epoch7/weights.npy'), 7)
  assert.equal(epochOf('epoch_3.pt'), 3)
  assert.equal(epochOf('logs/epoch_3.pt'), undefined)
  assert.equal(epochOf('model.safetensors'), undefined)
  assert.equal(epochOf('checkpoint_best/model.pt'), undefined)
  assert.equal(nameFor('zoos/MNIST', 'NN_tune_trainable_0_seed=1,lr=0.1/V2'), 'zoos/mnist/nn_tune_trainable_0_seed-1-lr-0.1/v2_')
  assert.ok(nameFor(undefined, 'a'.repeat(300)).length <= 200)
})
