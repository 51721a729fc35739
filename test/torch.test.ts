/**
 * torch.save checkpoints are first-class: files written by torch 1.13 (and the torch 2.x `archive/`
 * layout) are read by the restricted data.pkl reader, which refuses anything off its allow-list
 * without running it; storages start chunks, so a fine-tune that changes one tensor shares the
 * others' chunks; diff compares tensor by tensor; soups and epoch averaging write torch.save zips
 * that torch.load(weights_only=True) reads back equal to the mean torch computes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tempRepo, zoo } from './cli.js'
import { py, promoteInProcess, torchMissing } from './torch-helpers.js'
import { readTorchLayout, writeTorchArchive } from '../src/formats/torch.js'
import { readTorchPickle } from '../src/formats/torch-pickle.js'
import { decodeInto } from '../src/weights/dtype.js'
import { ZooError } from '../src/errors.js'
import { zipFile } from './eval-fixtures.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'

const skip = torchMissing

async function layoutOf(path: string) {
  const b = await readFile(path)
  return readTorchLayout(async (o, n) => b.subarray(o, o + n), b.length)
}

async function valuesAt(path: string, start: number, end: number, dtype: string): Promise<number[]> {
  const b = new Uint8Array(await readFile(path))
  const item = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8 }[dtype]!
  const out = new Float64Array((end - start) / item)
  decodeInto(b.subarray(start, end), dtype, out)
  return [...out]
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ZooError, String(err))
    assert.equal(err.code, code)
    assert.match(err.message, message)
    return true
  })
}

test('the restricted reader maps torch 1.x and 2.x files to named tensors and refuses anything else', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-torch-read-'))
  try {
    const expected = JSON.parse(await py(dir, `
import torch, json, zipfile
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.conv = torch.nn.Conv2d(1, 2, 3); s.bn = torch.nn.BatchNorm2d(2); s.fc = torch.nn.Linear(8, 3)
m = Net()
sd = m.state_dict()
torch.save(sd, 'sd.pt')
t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
ck = {'state_dict': sd, 'epoch': 7, 'half': torch.tensor([1.5, -2.25], dtype=torch.float16),
      'bf': torch.tensor([3.0, -0.5], dtype=torch.bfloat16), 'rows': t[1:3], 'list': [torch.ones(2), {'x': torch.zeros(1, dtype=torch.float64)}],
      'tr': t.t(), 'size': torch.Size([2, 3])}
torch.save(ck, 'ck.pt')
# the torch 2.x layout: the same entries under archive/ with a byteorder record (Python's zipfile, no alignment)
with zipfile.ZipFile('ck.pt') as src, zipfile.ZipFile('ck2.pt', 'w', zipfile.ZIP_STORED) as dst:
    for n in src.namelist():
        dst.writestr('archive/' + n.split('/', 1)[1], src.read(n))
    dst.writestr('archive/byteorder', 'little')
torch.save(sd, 'sd4.pt', pickle_protocol=4)  # FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL...
torch.save({'state_dict': sd, 'epoch': 7, 'tags': ['a', None, True], 'shape': torch.Size([2, 3]), 'big': 2**70, 'neg': -70000}, 'nest.pt')
torch.save(m, 'module.pt')  # a whole module: pickles the class __main__.Net
names = {'torch.float32': 'F32', 'torch.float16': 'F16', 'torch.bfloat16': 'BF16', 'torch.float64': 'F64', 'torch.int64': 'I64'}
def d(v): return {'dtype': names[str(v.dtype)], 'shape': list(v.shape), 'values': [float(x) for x in v.flatten().tolist()]}
ex_ck = {**{'state_dict.' + k: d(v) for k, v in sd.items()}, 'half': d(ck['half']), 'bf': d(ck['bf']), 'rows': d(ck['rows']), 'list.0': d(ck['list'][0]), 'list.1.x': d(ck['list'][1]['x'])}
print(json.dumps({'sd': {k: d(v) for k, v in sd.items()}, 'ck': ex_ck}))
`))
    const check = async (file: string, want: Record<string, { dtype: string; shape: number[]; values: number[] }>, prefix: string): Promise<void> => {
      const l = await layoutOf(join(dir, file))
      assert.equal(l.prefix, prefix)
      const readable = l.tensors.filter((t) => t.start !== undefined)
      assert.deepEqual(readable.map((t) => t.name), Object.keys(want), file)
      for (const t of readable) {
        const w = want[t.name]!
        assert.equal(t.dtype, w.dtype, `${file} ${t.name}`)
        assert.deepEqual(t.shape, w.shape, `${file} ${t.name}`)
        assert.deepEqual(await valuesAt(join(dir, file), t.start!, t.end!, t.dtype), w.values, `${file} ${t.name}`)
      }
      return void l.tensors.filter((t) => t.start === undefined).forEach((t) => {
        assert.equal(t.name, 'tr')
        assert.match(t.problem!, /non-contiguous view \(shape \[4,3\], stride \[1,4\]\)/)
      })
    }
    await check('sd.pt', expected.sd, 'sd') // torch 1.x: the prefix is the file's stem
    await check('ck.pt', expected.ck, 'ck')
    await check('ck2.pt', expected.ck, 'archive')
    await check('sd4.pt', expected.sd, 'sd4')

    // the writer: a checkpoint dict read and written back (tensors copied) is what torch.load reads
    const nest = await layoutOf(join(dir, 'nest.pt'))
    const src = await readFile(join(dir, 'nest.pt'))
    const fd = await open(join(dir, 'nest-out.pt'), 'w')
    await writeTorchArchive(async (b, p) => { await fd.write(b, 0, b.length, p) }, nest.root, nest.tensors.map((t) => ({
      tensor: t.tensor, dtype: t.dtype, bytes: t.end! - t.start!, fill: (put) => put(src.subarray(t.start!, t.end!)),
    })))
    await fd.close()
    assert.equal((await py(dir, `
import torch
a, b = torch.load('nest.pt', weights_only=True), torch.load('nest-out.pt', weights_only=True)
assert list(a.keys()) == list(b.keys()) and type(b['state_dict']) is type(a['state_dict'])
assert all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in a['state_dict']) and list(a['state_dict']) == list(b['state_dict'])
assert b['state_dict']._metadata == a['state_dict']._metadata
assert [a[k] == b[k] for k in ('epoch', 'tags', 'shape', 'big', 'neg')] == [True] * 5, b
print('same')
`)).trim(), 'same')
    const sd = await layoutOf(join(dir, 'sd.pt'))
    assert.equal(sd.tensors.find((t) => t.name === 'bn.num_batches_tracked')!.dtype, 'I64')

    // a pickled module names its class: refused at the GLOBAL, before anything could be called
    await rejectsWith(layoutOf(join(dir, 'module.pt')), 'E_TORCH_REFUSED', /global __main__\.Net is not on the allow-list/)
    // posix.system via GLOBAL + REDUCE: refused, and it never ran
    const marker = join(dir, 'PWNED')
    const cmd = Buffer.from(`touch ${marker}`)
    const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\n'), Buffer.from([0x58]), Buffer.from(Uint32Array.of(cmd.length).buffer), cmd, Buffer.from([0x85, 0x52, 0x2e])])
    await writeFile(join(dir, 'evil.pt'), zipFile([{ name: 'archive/data.pkl', data: evil }, { name: 'archive/version', data: Buffer.from('3\n') }]))
    await rejectsWith(layoutOf(join(dir, 'evil.pt')), 'E_TORCH_REFUSED', /global posix\.system is not on the allow-list/)
    assert.equal(await readFile(marker).then(() => true, () => false), false, 'the pickle ran')
    // an allowed name that is only a value may not be called; INST (a class by name) is refused
    assert.throws(() => readTorchPickle(Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('ctorch\nFloatStorage\n'), Buffer.from([0x29, 0x52, 0x2e])])), /torch\.FloatStorage is not callable/)
    assert.throws(() => readTorchPickle(Buffer.concat([Buffer.from([0x80, 0x02, 0x28]), Buffer.from('icollections\nOrderedDict\n'), Buffer.from([0x2e])])), (e: unknown) => (e as ZooError).code === 'E_TORCH_REFUSED')
    // a list holding itself, and lists shared so that the paths double 30 times: malformed, at once
    const { torchTensorsOf } = await import('../src/formats/torch-pickle.js')
    assert.throws(() => torchTensorsOf(readTorchPickle(Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]))), /holds itself/)
    const dag = [0x80, 0x02, 0x5d, 0x71, 0x00]
    for (let i = 0; i < 30; i++) dag.push(0x30, 0x5d, 0x28, 0x68, i, 0x68, i, 0x65, 0x71, i + 1)
    dag.push(0x2e)
    assert.throws(() => torchTensorsOf(readTorchPickle(Buffer.from(dag))), /more than \d+ values to walk/) // 2^30 paths: stops at the budget
    // a truncated data.pkl is malformed, not refused
    const pkl = (await readFile(join(dir, 'sd.pt')))
    const l = await layoutOf(join(dir, 'sd.pt'))
    void l
    const { readZipLayout } = await import('../src/formats/zip.js')
    const z = await readZipLayout(async (o, n) => pkl.subarray(o, o + n), pkl.length)
    const e = z.entries.find((x) => x.name === 'sd/data.pkl')!
    assert.throws(() => readTorchPickle(pkl.subarray(e.dataOffset, e.dataOffset + e.compressedSize - 3)), (err: unknown) => (err as ZooError).code === 'E_TORCH_PICKLE' && /truncated|ends before STOP/.test((err as Error).message))
  } finally { await rm(dir, { recursive: true, force: true }) }
})

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-torch-')
  assert.equal((await zoo(r.dir, ['init'])).code, 0)
  return r
}

test('a fine-tune that changes one tensor shares the other storages\' chunks; diff compares tensor by tensor; a refused file is stored and diff and soup say why', { skip }, async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const facts = JSON.parse(await py(dir, `
import torch, json, os, collections
torch.manual_seed(1)
base = collections.OrderedDict(a=torch.randn(64, 64), b=torch.randn(128, 128), c=torch.randn(256, 256))
tuned = collections.OrderedDict((k, v.clone()) for k, v in base.items())
tuned['b'] += 0.01 * torch.randn(128, 128)
os.makedirs('base'); os.makedirs('tuned')
torch.save(base, 'base/model.pt'); torch.save(tuned, 'tuned/model.pt')
d = tuned['b'].double() - base['b'].double()
os.makedirs('m'); os.makedirs('n')
torch.save(torch.nn.Linear(2, 2), 'm/model.pt')
torch.save(torch.nn.Linear(2, 2).state_dict(), 'n/model.pt')
print(json.dumps({'l2': d.norm().item(), 'max': d.abs().max().item()}))
`))
    assert.equal((await zoo(dir, ['add', 'base', '--name', 'ft/base'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'tuned', '--name', 'ft/tuned'])).code, 0)
    const r = await zoo(dir, ['diff', 'ft/base', 'ft/tuned', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    const w = j.weights[0]
    assert.equal(w.format, 'pytorch-zip')
    assert.equal(w.inspectable, true)
    const byName = Object.fromEntries(w.tensors.map((t: { name: string }) => [t.name, t]))
    assert.deepEqual(Object.keys(byName), ['a', 'b', 'c'])
    // the unchanged storages are the same chunks: identity proven without reading a byte
    assert.equal(byName.a.identical, true); assert.equal(byName.a.by, 'chunks')
    assert.equal(byName.c.identical, true); assert.equal(byName.c.by, 'chunks')
    assert.equal(byName.b.identical, false)
    assert.deepEqual(byName.b.shape, [128, 128])
    assert.ok(Math.abs(byName.b.l2 - facts.l2) <= 1e-9 * facts.l2, `${byName.b.l2} vs ${facts.l2}`)
    assert.ok(Math.abs(byName.b.max_abs - facts.max) <= 1e-12)
    assert.ok(j.storage.shared.bytes >= 4 * (64 * 64 + 256 * 256), JSON.stringify(j.storage))
    const text = await zoo(dir, ['diff', 'ft/base', 'ft/tuned'])
    assert.match(text.stdout, /model\.pt \(pytorch-zip\): 3 tensors compared, 2 identical/)
    assert.match(text.stdout, /~ b F32\[128,128\]\s+L2 /)

    // the same weights as safetensors: paired with the torch file, and every tensor the same chunks
    const base = await layoutOf(join(dir, 'base', 'model.pt'))
    const baseBytes = await readFile(join(dir, 'base', 'model.pt'))
    await mkdir(join(dir, 'st'))
    await writeFile(join(dir, 'st', 'model.safetensors'), encodeSafetensors(base.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: baseBytes.subarray(t.start!, t.end!) }))))
    assert.equal((await zoo(dir, ['add', 'st', '--name', 'ft/st'])).code, 0)
    const x = await zoo(dir, ['diff', 'ft/base', 'ft/st', '--json'])
    assert.equal(x.code, 0, x.stderr)
    const xw = JSON.parse(x.stdout).weights[0]
    assert.equal(xw.format, 'pytorch-zip/safetensors')
    assert.deepEqual(xw.tensors.map((t: { name: string; identical: boolean; by: string }) => [t.name, t.identical, t.by]), [['a', true, 'chunks'], ['b', true, 'chunks'], ['c', true, 'chunks']])

    // a pickled module: stored as bytes, never run; diff and soup say why they cannot read it
    assert.equal((await zoo(dir, ['add', 'm', '--name', 'x/module'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'n', '--name', 'x/state'])).code, 0)
    const d = await zoo(dir, ['diff', 'x/module', 'x/state', '--json'])
    assert.equal(d.code, 0, d.stderr)
    const dw = JSON.parse(d.stdout).weights[0]
    assert.equal(dw.inspectable, false)
    assert.match(dw.reason, /global torch\.nn\.modules\.linear\.Linear is not on the allow-list/)
    const s = await zoo(dir, ['soup', 'x/module', 'x/state', '--name', 'x/soup'])
    assert.equal(s.code, 1)
    assert.match(s.stderr, /torch\.nn\.modules\.linear\.Linear is not on the allow-list; the file is refused \(nothing was run\)/)
  } finally { await cleanup() }
})

test('soup --last-k 3 on a torch trajectory writes a torch.save zip that torch.load(weights_only=True) reads', { skip }, async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    await py(dir, `
import torch, os
torch.manual_seed(2)
class Net(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.conv = torch.nn.Conv2d(1, 2, 3); s.bn = torch.nn.BatchNorm2d(2); s.fc = torch.nn.Linear(8, 3)
m = Net()
opt = torch.optim.Adam(m.parameters())
for e in range(5):
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.1 * torch.randn_like(p))
        m.bn.num_batches_tracked.fill_(10 * e)
        m.bn.running_mean.add_(1.0)
    os.makedirs(f'run/checkpoint_00000{e}')
    torch.save(m.state_dict(), f'run/checkpoint_00000{e}/checkpoints')
    torch.save(opt.state_dict(), f'run/checkpoint_00000{e}/optimizer')  # a companion file, not weights
`)
    const files = []
    for (let e = 0; e < 5; e++) {
      for (const f of ['checkpoints', 'optimizer']) files.push({ source: join(dir, `run/checkpoint_00000${e}/${f}`), path: `checkpoint_00000${e}/${f}`, epoch: e })
    }
    await promoteInProcess(dir, [{ name: 'traj/cnn', files }])
    // every file, the checkpoint node's included (manifest format 2): `show --json` reads them
    const man = JSON.parse((await zoo(dir, ['show', 'traj/cnn@v1', '--json'])).stdout)
    assert.equal(man.files.length, 10)
    assert.ok(man.files.every((f: { format: string }) => f.format === 'pytorch-zip'))

    const r = await zoo(dir, ['soup', 'traj/cnn', '--last-k', '3', '--name', 'traj/cnn-avg3', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.equal(j.soup.method, 'epoch-average')
    assert.deepEqual(j.soup.members.map((m: { epoch: number; file: string }) => [m.epoch, m.file]), [[2, 'checkpoint_000002/checkpoints'], [3, 'checkpoint_000003/checkpoints'], [4, 'checkpoint_000004/checkpoints']])
    assert.deepEqual(j.files.map((f: { path: string }) => f.path), ['model.pt'])
    assert.equal((await zoo(dir, ['get', 'traj/cnn-avg3', '--out', 'avg'])).code, 0)
    const out = await py(dir, `
import torch, collections
sd = torch.load('avg/model.pt', weights_only=True)
src = [torch.load(f'run/checkpoint_00000{e}/checkpoints', weights_only=True) for e in (2, 3, 4)]
assert type(sd) is collections.OrderedDict, type(sd)
assert list(sd.keys()) == list(src[0].keys()), list(sd.keys())
for k, v in sd.items():
    if v.is_floating_point():
        want = ((src[0][k].double() + src[1][k].double() + src[2][k].double()) / 3).float()
        assert torch.equal(v, want), k
    else:
        assert torch.equal(v, src[2][k]), k   # counters come from the newest checkpoint
assert sd._metadata == src[0]._metadata
class Net(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.conv = torch.nn.Conv2d(1, 2, 3); s.bn = torch.nn.BatchNorm2d(2); s.fc = torch.nn.Linear(8, 3)
Net().load_state_dict(sd)
print('ok', int(sd['bn.num_batches_tracked']))
`)
    assert.equal(out.trim(), 'ok 40')
    // the soup is itself a torch file git-zoo reads: diff against the last epoch, tensor by tensor
    const d = await zoo(dir, ['diff', 'traj/cnn', 'traj/cnn-avg3', '--json'])
    assert.equal(d.code, 0, d.stderr)
    const w = JSON.parse(d.stdout).weights
    assert.equal(w.length, 1)
    assert.equal(w[0].a_file, 'checkpoint_000004/checkpoints')
    assert.equal(w[0].summary.compared, 9)
    assert.equal(w[0].tensors.find((t: { name: string }) => t.name === 'bn.num_batches_tracked').identical, true)
    // a model soup of two torch models must agree on integer tensors
    const bad = await zoo(dir, ['soup', 'traj/cnn', 'traj/cnn-avg3', '--name', 'traj/x', '--file', 'checkpoint_000000/checkpoints'])
    assert.equal(bad.code, 2)
  } finally { await cleanup() }
})

test('a Ray Tune trial of torch checkpoints, imported as the issue did, averages its last epochs and exports', { skip }, async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    await py(dir, `
import torch, os, json
torch.manual_seed(4)
m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
os.makedirs('zoo/trial_a')
json.dump({'model::type': 'mlp', 'optim::lr': 0.1, 'seed': 1}, open('zoo/trial_a/params.json', 'w'))
with open('zoo/trial_a/result.json', 'w') as f:
    for e in range(4):
        with torch.no_grad():
            for p in m.parameters(): p.add_(torch.randn_like(p))
        d = f'zoo/trial_a/checkpoint_{e:06d}'; os.makedirs(d)
        torch.save(m.state_dict(), d + '/checkpoints'); torch.save({'state': {}, 'param_groups': []}, d + '/optimizer')
        f.write(json.dumps({'training_iteration': e, 'test_acc': 0.1 * e}) + '\\n')
`)
    const imp = await zoo(dir, ['import', 'zoo'])
    assert.equal(imp.code, 0, imp.stderr)
    const ls = JSON.parse((await zoo(dir, ['ls', '--json'])).stdout)
    assert.equal(ls.models.length, 1)
    const name = ls.models[0].name
    const s = await zoo(dir, ['soup', name, '--last-k', '2', '--name', 'avg/trial_a', '--json'])
    assert.equal(s.code, 0, s.stderr)
    assert.deepEqual(JSON.parse(s.stdout).soup.members.map((m: { epoch: number }) => m.epoch), [2, 3])
    assert.equal((await zoo(dir, ['get', 'avg/trial_a', '--out', 'avg'])).code, 0)
    const e = await zoo(dir, ['export', '--population', `name=${name}`, '--out', 'ds', '--split', '1/0/0'])
    assert.equal(e.code, 0, e.stderr)
    const out = await py(dir, `
import torch, numpy as np
sd = torch.load('avg/model.pt', weights_only=True)
cs = [torch.load(f'zoo/trial_a/checkpoint_00000{e}/checkpoints', weights_only=True) for e in range(4)]
for k in sd: assert torch.equal(sd[k], ((cs[2][k].double() + cs[3][k].double()) / 2).float()), k
w = np.load('ds/train.npz')['w']
assert w.shape == (4, 26) and np.array_equal(w[3], np.concatenate([v.numpy().reshape(-1) for v in cs[3].values()]))
print('ok')
`)
    assert.equal(out.trim(), 'ok')
  } finally { await cleanup() }
})
