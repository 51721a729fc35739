/**
 * `git zoo export --population`: a population of torch trajectories written as train/val/test .npz,
 * read back with numpy and compared with the checkpoints torch.load reads; splits by model and
 * deterministic in the seed; epochs chosen; models of another shape refused by name; zip64 archives
 * numpy reads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile, open } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, tempRepo, zoo } from './cli.js'
import { py, promoteInProcess, torchMissing } from './torch-helpers.js'
import { ZipWriter } from '../src/formats/zip.js'
import { assignSplits, npyHeader, parseEpochs } from '../src/weights/population.js'

const skip = torchMissing
const MODELS = 6
const EPOCHS = 3

test('export --population writes every checkpoint as a row numpy reads back equal to the torch weights', { skip }, async () => {
  const { dir, cleanup } = await tempRepo('zoo-export-')
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await py(dir, `
import torch, os
torch.manual_seed(3)
def mlp(hidden):
    return torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
for i in range(${MODELS} + 1):
    m = mlp(4 if i < ${MODELS} else 5)   # the last model is wider
    for e in range(${EPOCHS}):
        with torch.no_grad():
            for p in m.parameters(): p.add_(torch.randn_like(p))
        os.makedirs(f'runs/m{i}/checkpoint_{e:06d}')
        sd = m.state_dict()
        if i == 0: sd['0.weight'] = sd['0.weight'].half()   # an F16 tensor is written as float32
        torch.save(sd, f'runs/m{i}/checkpoint_{e:06d}/checkpoints')
        torch.save({'state': {}, 'param_groups': []}, f'runs/m{i}/checkpoint_{e:06d}/optimizer')
`)
    const specs = []
    for (let i = 0; i <= MODELS; i++) {
      const files = []
      for (let e = 0; e < EPOCHS; e++) {
        for (const f of ['checkpoints', 'optimizer']) files.push({ source: join(dir, `runs/m${i}/checkpoint_${String(e).padStart(6, '0')}/${f}`), path: `checkpoint_${String(e).padStart(6, '0')}/${f}`, epoch: e })
      }
      specs.push({ name: i < MODELS ? `pop/m${i}` : 'pop/wide', files, arch: i < MODELS ? 'mlp4' : 'mlp5', dataset: 'toy', params: { lr: 0.1 * (i + 1), depth: 2 }, metrics: { test_acc: 0.5 + i / 100 } })
    }
    await promoteInProcess(dir, specs)

    // models of two shapes are refused, naming both
    const mixed = await zoo(dir, ['export', '--population', '--out', 'mixed'])
    assert.equal(mixed.code, 2)
    assert.match(mixed.stderr, /pop\/wide@v1:checkpoint_000000\/checkpoints does not have the shape of pop\/m0@v1: 0\.weight is \[5,3\], not \[4,3\]/)

    const r = await zoo(dir, ['export', '--population', 'arch=mlp4', '--out', 'ds', '--split', '50/25/25', '--seed', '3', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    const width = 3 * 4 + 4 + 4 + 4 + 4 + 4 + 4 * 2 + 2
    assert.equal(j.width, width)
    assert.equal(j.models, MODELS)
    assert.deepEqual(j.split_models, { train: 3, val: 2, test: 1 }) // 6 models at 50/25/25: the odd one to val (largest remainder, ties to the earlier split)
    assert.deepEqual(j.excluded, [{ name: '1.num_batches_tracked', dtype: 'I64' }])
    assert.match(r.stderr, /1\.num_batches_tracked \(I64\)/)

    const check = await py(dir, `
import numpy as np, json, torch
models = json.load(open('ds/models.json')); index = json.load(open('ds/index.json'))
assert [m['name'] for m in models] == [f'pop/m{i}' for i in range(${MODELS})], models
assert [e['name'] for e in index] == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '3.weight', '3.bias'], index
seen = {}
for split in ('train', 'val', 'test'):
    z = np.load(f'ds/{split}.npz')
    w, model, epoch = z['w'], z['model'], z['epoch']
    assert w.dtype == np.float32 and model.dtype == np.int64 and epoch.dtype == np.int64
    assert w.shape == (len(model), ${width}) and epoch.shape == model.shape
    for row, (mi, e) in enumerate(zip(model, epoch)):
        m = models[mi]
        assert m['split'] == split, (m, split)
        seen.setdefault(m['name'], []).append(int(e))
        i = int(m['name'][len('pop/m'):])
        sd = torch.load(f'runs/m{i}/checkpoint_{e:06d}/checkpoints', weights_only=True)
        want = np.concatenate([sd[t['name']].numpy().astype(np.float32).reshape(-1) for t in index])
        assert np.array_equal(w[row], want), (m['name'], e)
        for t in index:
            assert np.array_equal(w[row, t['offset']:t['offset'] + int(np.prod(t['shape']))].reshape(t['shape']), sd[t['name']].numpy())
assert seen == {f'pop/m{i}': [0, 1, 2] for i in range(${MODELS})}, seen
m0 = models[0]
assert m0['factors'] == {'depth': 2, 'lr': 0.1} and m0['metrics'] == {'test_acc': 0.5} and m0['dataset'] == 'toy' and m0['arch'] == 'mlp4' and m0['epochs'] == [0, 1, 2], m0
print(json.dumps({m['name']: m['split'] for m in models}))
`)
    const splits = JSON.parse(check)
    // the split is the documented function of the seed and the names (and nothing else)
    const expectSplits = assignSplits(Array.from({ length: MODELS }, (_, i) => ({ name: `pop/m${i}`, version: 1 })), [50, 25, 25], 3)
    assert.deepEqual(Object.values(splits), expectSplits)

    // the same seed writes the same bytes
    assert.equal((await zoo(dir, ['export', '--population', 'arch=mlp4', '--out', 'ds2', '--split', '50/25/25', '--seed', '3'])).code, 0)
    for (const f of ['train.npz', 'val.npz', 'test.npz', 'models.json', 'index.json']) {
      assert.ok((await readFile(join(dir, 'ds', f))).equals(await readFile(join(dir, 'ds2', f))), f)
    }
    // chosen epochs; a missing epoch and a non-empty folder are refused
    const ep = await zoo(dir, ['export', '--population', 'arch=mlp4', 'params.lr<0.25', '--out', 'ep', '--epochs', '0,2', '--split', '1/0/0', '--json'])
    assert.equal(ep.code, 0, ep.stderr)
    assert.deepEqual(JSON.parse(ep.stdout).rows, { train: 4, val: 0, test: 0 })
    assert.equal((await py(dir, "import numpy as np; z = np.load('ep/train.npz'); print(z['epoch'].tolist(), z['model'].tolist(), np.load('ep/val.npz')['w'].shape)")).trim(), '[0, 2, 0, 2] [0, 0, 1, 1] (0, 42)')
    // only the tensors under a prefix (the last layer)
    const last = await zoo(dir, ['export', '--population', 'arch=mlp4', '--out', 'last', '--tensors', '3.', '--json'])
    assert.equal(last.code, 0, last.stderr)
    assert.equal(JSON.parse(last.stdout).width, 4 * 2 + 2)
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'last', 'index.json'), 'utf8')).map((e: { name: string; offset: number }) => [e.name, e.offset]), [['3.weight', 0], ['3.bias', 8]])
    const missing = await zoo(dir, ['export', '--population', 'arch=mlp4', '--out', 'ep3', '--epochs', '1-3'])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /pop\/m0@v1 has no checkpoint at epoch 3/)
    // killed mid-row: only its temporary file is left, and the same command then finishes the export
    const same = ['export', '--population', 'arch=mlp4', '--split', '50/25/25', '--seed', '3']
    const killed = await zoo(dir, [...same, '--out', 'k'], { GIT_ZOO_CRASH_AT: 'export-row' })
    assert.notEqual(killed.code, 0)
    assert.match(killed.stderr, /crash point export-row/)
    assert.deepEqual(await readdir(join(dir, 'k')), ['.train.npz.tmp'])
    assert.equal((await zoo(dir, [...same, '--out', 'k'])).code, 0)
    assert.deepEqual((await readdir(join(dir, 'k'))).sort(), ['index.json', 'models.json', 'test.npz', 'train.npz', 'val.npz'])
    assert.ok((await readFile(join(dir, 'k', 'train.npz'))).equals(await readFile(join(dir, 'ds', 'train.npz'))))
    // interrupted (SIGINT) while paused after a row: exit 130, nothing left in the folder
    const marker = join(dir, 'paused')
    const child = spawn(process.execPath, [BIN, ...same, '--out', 'i'], { cwd: dir, env: { ...process.env, GIT_ZOO_DEBUG: '', GIT_ZOO_PAUSE_AT: 'export-row', GIT_ZOO_PAUSE_FILE: marker } })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr += t })
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)))
    while (!existsSync(marker)) await new Promise((r) => setTimeout(r, 10)) // the pause point writes it
    child.kill('SIGINT')
    assert.equal(await exited, 130, stderr)
    assert.match(stderr, /interrupted; nothing was written, run the same command again/)
    assert.deepEqual(await readdir(join(dir, 'i')), [])

    const full = await zoo(dir, ['export', '--population', 'arch=mlp4', '--out', 'ds'])
    assert.equal(full.code, 2)
    assert.match(full.stderr, /is not empty/)
    assert.equal((await zoo(dir, ['export', '--population', 'arch=none', '--out', 'none'])).code, 2)
    assert.equal((await zoo(dir, ['export', '--out', 'x'])).code, 2)
  } finally { await cleanup() }
})

test('splits are by seed, sizes by largest remainder; --epochs ranges', () => {
  const models = Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, version: 1 }))
  const a = assignSplits(models, [70, 15, 15], 1)
  assert.deepEqual(['train', 'val', 'test'].map((s) => a.filter((x) => x === s).length), [7, 2, 1])
  assert.deepEqual(assignSplits([...models].reverse(), [70, 15, 15], 1), [...a].reverse()) // order does not matter
  assert.notDeepEqual(assignSplits(models, [70, 15, 15], 2), a)
  assert.deepEqual(parseEpochs('0,10,3-5'), [0, 3, 4, 5, 10])
  assert.throws(() => parseEpochs('5-3'), /--epochs/)
})

test('zip64 archives from the streaming writer are read by numpy', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-zip64-'))
  try {
    const fd = await open(join(dir, 'z.npz'), 'w')
    const zip = new ZipWriter(async (b, p) => { await fd.write(b, 0, b.length, p) }, { align: 64, forceZip64: true })
    const values = Float32Array.from({ length: 300 }, (_, i) => i / 7)
    const head = npyHeader('<f4', [100, 3])
    await zip.begin('w.npy', head.length + values.byteLength)
    await zip.data(head)
    await zip.data(new Uint8Array(values.buffer, 0, 600)) // in two pieces
    await zip.data(new Uint8Array(values.buffer, 600))
    await zip.end()
    await zip.finish()
    await fd.close()
    await writeFile(join(dir, 'want.f32'), new Uint8Array(values.buffer))
    const out = await py(dir, "import numpy as np, zipfile; z = np.load('z.npz'); w = z['w']; print(w.shape, np.array_equal(w.reshape(-1), np.fromfile('want.f32', dtype='<f4')), zipfile.ZipFile('z.npz').testzip())")
    assert.equal(out.trim(), '(100, 3) True None')
  } finally { await rm(dir, { recursive: true, force: true }) }
})
