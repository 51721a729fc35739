/**
 * Import of small faithful copies of the two published zoo layouts, written the way their authors'
 * code writes them (ModelZoos/ModelZooDataset, ModelZoos/ViTModelZoo; Ray Tune 1.x): torch.save zips
 * made by Debian's torch, params.json / config.json with the authors' keys, result.json lines with
 * Ray's bookkeeping and -999 placeholders, companion files in every checkpoint folder, sparsified
 * twins pointing at their source trial through training::init_checkpoint_path (the twin's folder
 * name cut at 130 characters, as Ray cuts it), a zoo-level config.json and index_dict.json; and the
 * ViT zoo's pretraining/ and finetuning/<pretrained>/ trees. Skipped when /usr/bin/python3 has no torch.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { tempRepo, zoo, git, run } from './cli.js'
import { nameFor } from '../src/importer/layout.js'

const PY = '/usr/bin/python3'
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0

/** Writes both layouts under argv[1]; prints the folder names it made as JSON. */
const GENERATOR = String.raw`
import json, os, sys, pickle, torch
root = sys.argv[1]
torch.manual_seed(0)

def ray_trial(folder, config, epochs, state_fn, with_val=False):
    os.makedirs(folder)
    # Ray's JsonLogger: params.json (indent 2, sorted keys), params.pkl, result.json lines, progress.csv
    with open(os.path.join(folder, 'params.json'), 'w') as f:
        json.dump(config, f, indent=2, sort_keys=True, default=str)
    with open(os.path.join(folder, 'params.pkl'), 'wb') as f:
        pickle.dump(config, f)
    lines, csv = [], []
    for it in range(epochs + 1):
        model, optim = state_fn(it)
        cp = os.path.join(folder, 'checkpoint_%06d' % it)
        os.makedirs(cp)
        open(os.path.join(cp, '.is_checkpoint'), 'a').close()
        torch.save(model, os.path.join(cp, 'checkpoints'))
        torch.save(optim, os.path.join(cp, 'optimizer'))
        with open(os.path.join(cp, '.tune_metadata'), 'wb') as f:
            pickle.dump({'iteration': it, 'timesteps_total': None, 'time_total_s': 3.5 * it, 'episodes_total': None, 'saved_as_dict': False}, f)
        # iteration 0 evaluates the initial model: no training loss or accuracy exists yet (-999)
        r = {'train_loss': -999 if it == 0 else round(2.3 - 0.3 * it, 4), 'train_acc': -999 if it == 0 else round(0.1 + 0.2 * it, 4),
             'test_loss': round(2.31 - 0.28 * it, 4), 'test_acc': round(0.11 + 0.19 * it, 4)}
        if with_val:
            r['val_loss'] = round(2.2 - 0.25 * it, 4); r['val_acc'] = round(0.12 + 0.18 * it, 4)
        r.update({'time_this_iter_s': 3.5, 'done': it == epochs, 'timesteps_total': None, 'episodes_total': None,
                  'training_iteration': it, 'trial_id': os.path.basename(folder).split('_')[3] if 'from' not in folder else 'ab12c_00000',
                  'experiment_id': 'f00dfeedbeef', 'date': '2021-09-28_15-04-%02d' % it, 'timestamp': 1632841451 + it,
                  'time_total_s': 3.5 * it, 'pid': 4242, 'hostname': 'node7', 'node_ip': '10.0.0.7', 'config': config,
                  'time_since_restore': 3.5 * it, 'timesteps_since_restore': 0, 'iterations_since_restore': it + 1})
        lines.append(json.dumps(r))
    with open(os.path.join(folder, 'result.json'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    keys = ['train_loss', 'train_acc', 'test_loss', 'test_acc', 'training_iteration']
    with open(os.path.join(folder, 'progress.csv'), 'w') as f:
        f.write(','.join(keys) + '\n')
        for l in lines:
            d = json.loads(l); f.write(','.join(str(d[k]) for k in keys) + '\n')

def cnn_state(seed, it):
    g = torch.Generator().manual_seed(seed * 100 + it)
    from collections import OrderedDict
    m = OrderedDict([('module_list.0.weight', torch.randn(4, 1, 3, 3, generator=g)), ('module_list.3.weight', torch.randn(4, 4, 3, 3, generator=g)),
                     ('module_list.7.weight', torch.randn(10, 4, generator=g))])
    o = {'state': {0: {'step': it, 'exp_avg': torch.zeros(4, 1, 3, 3)}}, 'param_groups': [{'lr': 0.0003, 'weight_decay': 0.0, 'params': [0, 1, 2]}]}
    return m, o

# --- Model Zoos: zoos/MNIST/tune_zoo_mnist_uniform (train_zoo_mnist_uniform.py) ---
exp = os.path.join(root, 'mz', 'zoos', 'MNIST', 'tune_zoo_mnist_uniform')
os.makedirs(exp)
dump = '/home/researcher/model_zoos/zoos/MNIST/tune_zoo_mnist_uniform/dataset.pt'
base = {'model::type': 'CNN', 'model::channels_in': 1, 'model::o_dim': 4, 'model::nlin': 'tanh', 'model::dropout': 0.0,
        'model::init_type': 'uniform', 'model::use_bias': False, 'optim::optimizer': 'adam', 'optim::lr': 0.0003, 'optim::wd': 0.0,
        'training::batchsize': 10, 'training::epochs_train': 3, 'training::start_epoch': 1, 'training::output_epoch': 1,
        'training::val_epochs': 1, 'training::idx_out': 500, 'training::checkpoint_dir': None, 'cuda': False, 'dataset::dump': dump}
with open(os.path.join(exp, 'config.json'), 'w') as f:
    json.dump(dict(base, seed={'grid_search': [1, 2]}), f, default=str)
open(os.path.join(exp, 'readme.md'), 'w').close()
with open(os.path.join(exp, 'index_dict.json'), 'w') as f:
    json.dump({'layer': [0, 3, 7], 'kernel_size': [9, 9, 1], 'channels_in': [1, 4, 4], 'kernel_no': [4, 4, 10], 'idx_start': [0, 36, 180]}, f)
sources = []
for i, seed in enumerate([1, 2]):
    name = 'NN_tune_trainable_3c5e1_%05d_%d_seed=%d_2021-09-28_15-04-11' % (i, i, seed)
    sources.append(name)
    ray_trial(os.path.join(exp, name), dict(base, seed=seed), 3, lambda it, s=seed: cnn_state(s, it))

# --- its sparsified twins: zoos/MNIST/ARD/cnn_small_mnist_ard (train_mnist_sparse_vd.py) ---
ard = os.path.join(root, 'mz', 'zoos', 'MNIST', 'ARD', 'cnn_small_mnist_ard')
os.makedirs(ard)
twins = []
for i, src in enumerate(sources):
    init = '/home/researcher/model_zoos/zoos/MNIST/tune_zoo_mnist_uniform/' + src
    cfg = dict(base, seed=[1, 2][i])
    cfg.update({'model::type': 'CNN_ARD', 'training::init_checkpoint_path': init, 'training::sample_epoch': 3, 'training::epochs_train': 2,
                'dataset::dump': '/home/researcher/model_zoos/zoos/MNIST/ARD/cnn_small_mnist_ard/dataset.pt'})
    # Ray names the folder <trainable>_<trial id>_<tag>, cut at 130 characters, then the date
    tag = ('NN_tune_trainable_from_checkpoint_ab12c_%05d_%d_training::init_checkpoint_path=%s' % (i, i, init.replace('/', '_')))[:130]
    twins.append(tag + '_2021-10-02_09-12-44')
    ray_trial(os.path.join(ard, tag + '_2021-10-02_09-12-44'), cfg, 2, lambda it, s=seed: cnn_state(s + 50, it))
with open(os.path.join(ard, 'config.json'), 'w') as f:
    json.dump(dict(base, **{'model::type': 'CNN_ARD', 'training::init_checkpoint_path': {'grid_search': ['zoos/MNIST/tune_zoo_mnist_uniform/' + s for s in sources]}}), f, default=str)

# --- ViT zoo: pretraining/<model>, finetuning/<pretrained>/<model> (config.json, result.json) ---
vit = os.path.join(root, 'vit')
def vit_state(seed, it):
    g = torch.Generator().manual_seed(seed * 1000 + it)
    from collections import OrderedDict
    body = OrderedDict([('conv_proj.weight', torch.randn(8, 3, 4, 4, generator=g)), ('encoder.layers.encoder_layer_0.ln_1.weight', torch.ones(8)),
                        ('heads.head.weight', torch.randn(10, 8, generator=g))])
    return body, {'state': {}, 'param_groups': [{'lr': 0.001, 'params': [0, 1, 2]}]}
pre = 'sl_vit_s_16_224_seed_42_bs_256_lr_0.001_wd_0.0001_me_90'
pcfg = {'dataset::dump': '/ds2/model_zoos/zoos_vit/zoos/ImageNet/dataset_dump/imagenet_supervised_ds2.pt', 'dataset::name': 'ImageNet1K',
        'model::channels_in': 3, 'model::init_type': 'kaiming_normal', 'model::nlin': 'gelu', 'model::o_dim': 1000, 'model::type': 'vit_s_16',
        'model::patch_size': 16, 'model::name': pre, 'optim::lr': 0.001, 'optim::scheduler': None, 'optim::optimizer': 'adamw', 'optim::wd': 0.0001,
        'seed': 42, 'training::batchsize': 256, 'training::epochs_train': 90, 'training::mode': 'sl'}
def vit_trial(folder, cfg, epochs, seed):
    os.makedirs(folder)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=4)
    lines = []
    for it in range(epochs + 1):
        m, o = vit_state(seed, it)
        cp = os.path.join(folder, 'checkpoint_%06d' % it)
        os.makedirs(cp)
        torch.save(m, os.path.join(cp, 'checkpoints'))
        torch.save(o, os.path.join(cp, 'optimizer'))
        lines.append(json.dumps({'train_loss': -999 if it == 0 else 3.0 - 0.5 * it, 'test_acc': 0.05 + 0.2 * it, 'test_loss': 3.1 - 0.4 * it, 'training_iteration': it, 'timestamp': 1700000000 + it}))
    with open(os.path.join(folder, 'result.json'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
vit_trial(os.path.join(vit, 'pretraining', pre), pcfg, 2, 42)
ft = 'sl_ft_SD_7_LR_0.001_WD_0_OM_adamw_HD_NA_FZ_False_FCMLP_False'
fcfg = {'dataset::dump': '/ds2/model_zoos/zoos_vit/zoos/CIFAR100/dataset_dump/cifar.pt', 'dataset::name': 'CIFAR100', 'model::channels_in': 3,
        'model::head::mlp': False, 'model::head::seed': 42, 'model::o_dim': 100, 'model::type': 'vit_s_16', 'model::name': ft,
        'optim::lr': 0.001, 'optim::optimizer': 'adamw', 'optim::wd': 0, 'seed': 7, 'training::epochs_train': 50,
        'pretraining::model': pre, 'pretraining::model::path': '/ds2/model_zoos/zoos_vit/zoos/ImageNet/' + pre + '/checkpoint_89/checkpoints',
        'pretraining::seed': 42, 'pretraining::mode': 'sl'}
vit_trial(os.path.join(vit, 'finetuning', pre, ft), fcfg, 2, 7)
print(json.dumps({'sources': sources, 'twins': twins, 'pre': pre, 'ft': ft}))
`

interface Man {
  name: string; seed?: number; dataset?: string; arch?: string; params: Record<string, unknown>; metrics: Record<string, number>
  history: Array<Record<string, number>>; parents: Array<{ name: string; relation: string }>; population?: string
  files: Array<{ path: string; epoch?: number; role?: string; format: string; sha256: string }>
}

test('import of faithful copies of the Model Zoos and ViT zoo layouts: factors, lineage, metrics, companions, zoo records', { skip: hasTorch ? false : `${PY} has no torch (apt-get install python3-torch)` }, async () => {
  const { dir, cleanup } = await tempRepo()
  const src = await mkdtemp(join(tmpdir(), 'zoo-published-'))
  try {
    const g = await run(PY, ['-c', GENERATOR, src], { cwd: src })
    assert.equal(g.code, 0, g.stderr)
    const made = JSON.parse(g.stdout) as { sources: string[]; twins: string[]; pre: string; ft: string }
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await writeFile(join(dir, '.gitignore'), '.zoo/cache/\n')
    await git(dir, 'add', '.gitignore', '.zoo')
    await git(dir, 'commit', '-q', '-m', 'zoo')

    // --- Model Zoos ---
    // one commit per model: the twins' folders sort before their sources', yet each source is committed first
    const r = await zoo(dir, ['import', join(src, 'mz'), '--prefix', 'mz', '--batch', '1', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const rep = JSON.parse(r.stdout) as { commits: string[]; layout: string; promoted: number; models: Array<{ name: string; parent?: string; checkpoints: number }>; populations: Array<{ name: string; files: string[]; models: number }> }
    assert.equal(rep.layout, 'model-zoos')
    assert.equal(rep.promoted, 4)
    assert.equal(rep.commits.length, 4)
    const nameOf = (folder: string): string => nameFor('mz', `zoos/MNIST/tune_zoo_mnist_uniform/${folder}`)
    assert.ok(made.sources.every((s) => rep.models.some((m) => m.name === nameOf(s))))
    // every file and the history: `show --json` reads a trajectory's checkpoint node (manifest format 2)
    const read = async (name: string): Promise<Man> => {
      const r = await zoo(dir, ['show', `${name}@v1`, '--json'])
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as Man
    }
    const source = await read(nameOf(made.sources[1]!))
    // factors as the authors meant them: the dataset is the one the dump path names, never "dataset"
    assert.equal(source.dataset, 'MNIST')
    assert.equal(source.arch, 'CNN')
    assert.equal(source.seed, 2)
    assert.equal(source.params['optim::lr'], 0.0003)
    assert.equal(source.params['model::nlin'], 'tanh')
    assert.equal(source.params['training::batchsize'], 10)
    assert.equal(source.params['dataset::dump'], '/home/researcher/model_zoos/zoos/MNIST/tune_zoo_mnist_uniform/dataset.pt')
    assert.equal(source.population, 'mz/zoos/mnist/tune_zoo_mnist_uniform')
    // metrics: Ray's -999 placeholders are no values; training_iteration numbers the checkpoints
    assert.deepEqual(source.history.map((h) => h.epoch), [0, 1, 2, 3])
    assert.equal(source.history[0]!.train_loss, undefined)
    assert.equal(source.history[0]!.test_acc, 0.11)
    assert.equal(source.history[1]!.train_loss, 2)
    assert.ok(!JSON.stringify(source.history).includes('-999'))
    assert.deepEqual(Object.keys(source.metrics).sort(), ['test_acc', 'test_loss', 'train_acc', 'train_loss', 'training_iteration'])
    assert.equal(source.metrics.train_loss, 1.4)
    // companions: kept with their checkpoint, marked, not weights
    const at1 = source.files.filter((f) => f.epoch === 1).map((f) => `${f.path} ${f.role ?? 'weights'}`)
    assert.deepEqual(at1.sort(), ['checkpoint_000001/.is_checkpoint metadata', 'checkpoint_000001/.tune_metadata metadata', 'checkpoint_000001/checkpoints weights', 'checkpoint_000001/optimizer optimizer'])
    assert.ok(source.files.some((f) => f.path === 'params.pkl' && f.epoch === undefined))
    // sparsified twins: the source trial named by training::init_checkpoint_path, though the twin's folder name is cut
    for (const [i, twinFolder] of made.twins.entries()) {
      const twin = rep.models.find((m) => m.name === nameFor('mz', `zoos/MNIST/ARD/cnn_small_mnist_ard/${twinFolder}`))!
      assert.ok(twin, `twin ${twinFolder} imported`)
      assert.ok(twinFolder.length === 130 + '_2021-10-02_09-12-44'.length && !twinFolder.includes(made.sources[i]!), 'the twin folder name is cut before the source trial name ends')
      const t = await read(twin.name)
      assert.deepEqual(t.parents.map((p) => [p.name, p.relation]), [[nameOf(made.sources[i]!), 'sparsified']])
      assert.equal(t.arch, 'CNN_ARD')
      assert.equal(t.dataset, 'MNIST')
      assert.equal(t.population, 'mz/zoos/mnist/ard/cnn_small_mnist_ard')
    }
    // the zoo-level files, verbatim, and the models that belong to them
    assert.deepEqual(rep.populations.map((p) => [p.name, p.files, p.models]).sort(), [
      ['mz/zoos/mnist/ard/cnn_small_mnist_ard', ['config.json'], 2],
      ['mz/zoos/mnist/tune_zoo_mnist_uniform', ['config.json', 'index_dict.json', 'readme.md'], 2]])
    for (const f of ['config.json', 'index_dict.json']) {
      assert.deepEqual(await readFile(join(dir, 'zoos/mz/zoos/mnist/tune_zoo_mnist_uniform', f)), await readFile(join(src, 'mz/zoos/MNIST/tune_zoo_mnist_uniform', f)))
    }
    assert.equal((await git(dir, 'status', '--porcelain')).trim(), '')
    // the catalog and lineage see it
    const f = JSON.parse((await zoo(dir, ['find', 'dataset=MNIST', 'arch=CNN_ARD', '--json'])).stdout) as { models: Array<{ name: string }> }
    assert.equal(f.models.length, 2)
    const pop = JSON.parse((await zoo(dir, ['find', 'population=mz/zoos/mnist/tune_zoo_mnist_uniform', '--json'])).stdout) as { models: Array<{ name: string; population: string }> }
    assert.deepEqual(pop.models.map((m) => m.name).sort(), made.sources.map(nameOf).sort())
    const lin = JSON.parse((await zoo(dir, ['lineage', nameOf(made.sources[0]!), '--json'])).stdout) as { edges: Array<{ relation: string }> }
    assert.deepEqual(lin.edges.map((e) => e.relation), ['sparsified'])
    const best = JSON.parse((await zoo(dir, ['find', 'best.train_loss<0', '--json'])).stdout) as { models: unknown[] }
    assert.equal(best.models.length, 0, 'a -999 placeholder is never a best value')
    // a checkpoint comes back with its companions, byte for byte
    const out = await zoo(dir, ['get', source.name, '--checkpoint', '2', '--out', 'cp2'])
    assert.equal(out.code, 0, out.stderr)
    for (const n of ['checkpoints', 'optimizer', '.tune_metadata']) {
      assert.deepEqual(await readFile(join(dir, 'cp2/checkpoint_000002', n)), await readFile(join(src, 'mz/zoos/MNIST/tune_zoo_mnist_uniform', made.sources[1]!, 'checkpoint_000002', n)))
    }
    // run again: nothing changes
    const again = JSON.parse((await zoo(dir, ['import', join(src, 'mz'), '--prefix', 'mz', '--json'])).stdout) as { promoted: number; unchanged: number }
    assert.deepEqual([again.promoted, again.unchanged], [0, 4])

    // --- ViT zoo ---
    const v = await zoo(dir, ['import', join(src, 'vit'), '--prefix', 'vit', '--json'])
    assert.equal(v.code, 0, v.stderr)
    assert.equal((JSON.parse(v.stdout) as { layout: string }).layout, 'vit')
    const pre = await read(`vit/pretraining/${made.pre}`)
    const ft = await read(`vit/finetuning/${made.pre}/${made.ft.toLowerCase()}`)
    assert.deepEqual([pre.dataset, pre.arch, pre.seed], ['ImageNet1K', 'vit_s_16', 42])
    // the fine-tune's dataset is its config's dataset::name; its seed is `seed`, not model::head::seed
    assert.deepEqual([ft.dataset, ft.arch, ft.seed], ['CIFAR100', 'vit_s_16', 7])
    assert.equal(ft.params['model::head::seed'], 42)
    assert.equal(ft.params['pretraining::seed'], 42)
    assert.deepEqual(ft.parents.map((p) => [p.name, p.relation]), [[pre.name, 'fine-tune']])
    assert.equal(ft.history[0]!.train_loss, undefined)
    assert.deepEqual(ft.files.filter((x) => x.epoch === 2).map((x) => `${x.path} ${x.role ?? 'weights'}`), ['checkpoint_000002/checkpoints weights', 'checkpoint_000002/optimizer optimizer'])
  } finally { await cleanup(); await rm(src, { recursive: true, force: true }) }
})
