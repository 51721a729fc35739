/**
 * Writes a deterministic demo model zoo to disk (layout in spec/demo.md):
 *   - a grid population in the manner of the Model Zoos dataset: one model per
 *     seed x learning rate x activation x initialisation, a checkpoint before training and after
 *     every epoch, `config.json` with the generating factors and `result.json` with the metrics;
 *   - a pre-train then fine-tune family in the manner of the ViT zoo: one model pre-trained on task A
 *     and fine-tunes of it on task B, some training the head only (their frozen body tensors are
 *     byte-identical to the pre-trained model's last checkpoint);
 *   - the test splits of both tasks as `.npy` pairs, for `git zoo eval`.
 * Same options, same bytes, on every run.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { UsageError } from '../errors.js'
import { encodeMlpOnnx } from '../onnx/encode.js'
import { encodeSafetensors } from '../formats/safetensors.js'
import { makeDataset, splitNpy, TASK_A, TASK_B } from './data.js'
import type { Dataset, TaskSpec } from './data.js'
import { initMlp, replaceHead, train } from './train.js'
import type { Activation, EpochMetrics, Init, Mlp, Tensor, TrainOptions } from './train.js'

export const DEMO_FORMAT = 'git-zoo-demo/1'

export interface FinetuneSpec { name: string; lr: number; seed: number; freezeBody: boolean }

export interface PopulationOptions {
  seeds?: number[]
  learningRates?: number[]
  activations?: Activation[]
  inits?: Init[]
  hidden?: number[]
  /** Training epochs per grid model; each model gets epochs + 1 checkpoints. */
  epochs?: number
  momentum?: number
  batchSize?: number
  /** Seed of the dataset samples (the class prototypes are fixed by the task). */
  dataSeed?: number
  taskA?: TaskSpec
  taskB?: TaskSpec
  /** false: grid only. */
  finetune?: boolean
  pretrain?: { seed: number; lr: number; activation: Activation; init: Init; epochs: number }
  finetunes?: FinetuneSpec[]
  finetuneEpochs?: number
  /** Write `model.onnx` beside the last checkpoint of each model (default true). */
  onnx?: boolean
  log?: (line: string) => void
}

/** The defaults: 2 seeds x 2 learning rates x 2 activations x 1 init = 8 grid models, 1 + 3 fine-tuning family. */
export const DEFAULT_POPULATION = {
  seeds: [1, 2],
  learningRates: [0.02, 0.1],
  activations: ['relu', 'tanh'] as Activation[],
  inits: ['kaiming_uniform'] as Init[],
  hidden: [32],
  epochs: 8,
  momentum: 0.9,
  batchSize: 32,
  dataSeed: 1,
  pretrain: { seed: 1, lr: 0.1, activation: 'gelu' as Activation, init: 'kaiming_uniform' as Init, epochs: 10 },
  finetunes: [
    { name: 'ft-full-lr0.05', lr: 0.05, seed: 11, freezeBody: false },
    { name: 'ft-head-lr0.1', lr: 0.1, seed: 12, freezeBody: true },
    { name: 'ft-head-lr0.02', lr: 0.02, seed: 13, freezeBody: true },
  ] as FinetuneSpec[],
  finetuneEpochs: 6,
}

export interface PopulationModel {
  /** Folder relative to the population root, '/'-separated. */
  path: string
  kind: 'grid' | 'pretrained' | 'finetuned'
  config: Record<string, unknown>
  final: EpochMetrics
}

export interface PopulationSummary { models: PopulationModel[]; files: number; bytes: number; ms: number }

/** `checkpoint_000003`: the epoch zero-padded to six digits, as Ray Tune names them in the Model Zoos. */
export function checkpointDirName(epoch: number): string { return `checkpoint_${String(epoch).padStart(6, '0')}` }

/** The float32 tensors of a checkpoint as safetensors bytes (dtype F32, little-endian). */
export function checkpointSafetensors(params: Tensor[]): Uint8Array {
  return encodeSafetensors(params.map((t) => {
    const data = new Uint8Array(t.data.length * 4)
    const view = new DataView(data.buffer)
    t.data.forEach((v, i) => view.setFloat32(4 * i, v, true))
    return { name: t.name, dtype: 'F32', shape: [...t.shape], data }
  }), { producer: 'git-zoo demo' })
}

function json(value: unknown): string { return JSON.stringify(value, null, 2) + '\n' }

export async function generatePopulation(dir: string, opts: PopulationOptions = {}): Promise<PopulationSummary> {
  const started = performance.now()
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as PopulationOptions
  const o = { ...DEFAULT_POPULATION, ...given }
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
  if (existing.length > 0) throw new UsageError(`${dir} is not empty; the demo population is written into a new or empty directory`, 'E_NOT_EMPTY', { dir })
  const log = opts.log ?? (() => {})
  let files = 0, bytes = 0
  const put = async (rel: string, data: Uint8Array | string): Promise<void> => {
    const path = join(dir, ...rel.split('/'))
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, data)
    files++
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length
  }

  const taskA = makeDataset(o.taskA ?? TASK_A, o.dataSeed), taskB = makeDataset(o.taskB ?? TASK_B, o.dataSeed)
  for (const d of [taskA, taskB]) {
    const { x, y } = splitNpy(d.test, d.features)
    await put(`data/${d.name}-test.x.npy`, x)
    await put(`data/${d.name}-test.y.npy`, y)
  }

  const models: PopulationModel[] = []
  const base = { optimizer: 'sgd', momentum: o.momentum, weight_decay: 0, batch_size: o.batchSize }
  const emit = async (path: string, kind: PopulationModel['kind'], config: Record<string, unknown>, mlp: Mlp, data: Dataset, trainOpts: TrainOptions): Promise<Mlp> => {
    const t0 = performance.now()
    const result = train(mlp, data, trainOpts)
    const full = { format: DEMO_FORMAT, kind, ...config, dataset_seed: data.seed, ...base, lr: trainOpts.lr, epochs: trainOpts.epochs }
    await put(`${path}/config.json`, json(full))
    await put(`${path}/result.json`, json(result.metrics))
    for (let e = 0; e < result.checkpoints.length; e++) {
      await put(`${path}/${checkpointDirName(e)}/model.safetensors`, checkpointSafetensors(result.checkpoints[e]!))
    }
    if (o.onnx !== false) {
      const last = result.checkpoints.length - 1
      await put(`${path}/${checkpointDirName(last)}/model.onnx`, encodeMlpOnnx(result.checkpoints[last]!, {
        activation: mlp.spec.activation, graphName: path, metadata: { model: path, epoch: String(last), dataset: data.name },
      }))
    }
    const final = result.metrics[result.metrics.length - 1]!
    models.push({ path, kind, config: full, final })
    log(`${path}: ${trainOpts.epochs} epochs, test_acc ${final.test_acc.toFixed(3)} (${(performance.now() - t0).toFixed(0)} ms)`)
    return result.model
  }
  const arch = (activation: Activation, outputs: number) => ({ arch: 'mlp', inputs: taskA.features, hidden: o.hidden, outputs, activation })

  for (const seed of o.seeds) for (const lr of o.learningRates) for (const activation of o.activations) for (const init of o.inits) {
    const name = `mlp-seed${seed}-lr${lr}-${activation}-${init}`
    const mlp = initMlp({ inputs: taskA.features, hidden: o.hidden, outputs: taskA.classes, activation }, init, seed)
    await emit(`grid/${name}`, 'grid', { dataset: taskA.name, ...arch(activation, taskA.classes), init, seed, frozen: [], parent: null, parent_checkpoint: null },
      mlp, taskA, { epochs: o.epochs, lr, seed, momentum: o.momentum, batchSize: o.batchSize })
  }

  if (o.finetune !== false) {
    const p = o.pretrain
    const preName = `mlp-${taskA.name}-seed${p.seed}-${p.activation}`
    const prePath = `pretraining/${preName}`
    const pre = await emit(prePath, 'pretrained', { dataset: taskA.name, ...arch(p.activation, taskA.classes), init: p.init, seed: p.seed, frozen: [], parent: null, parent_checkpoint: null },
      initMlp({ inputs: taskA.features, hidden: o.hidden, outputs: taskA.classes, activation: p.activation }, p.init, p.seed), taskA,
      { epochs: p.epochs, lr: p.lr, seed: p.seed, momentum: o.momentum, batchSize: o.batchSize })
    const bodyLayers = o.hidden.length
    for (const ft of o.finetunes) {
      const mlp = replaceHead(pre, taskB.classes, p.init, ft.seed)
      const frozen = ft.freezeBody ? mlp.params.slice(0, 2 * bodyLayers).map((t) => t.name) : []
      await emit(`finetuning/${preName}/${ft.name}`, 'finetuned', {
        dataset: taskB.name, ...arch(p.activation, taskB.classes), init: 'parent', head_init: p.init, seed: ft.seed, frozen,
        parent: prePath, parent_checkpoint: p.epochs,
      }, mlp, taskB, { epochs: o.finetuneEpochs, lr: ft.lr, seed: ft.seed, momentum: o.momentum, batchSize: o.batchSize, freezeLayers: ft.freezeBody ? bodyLayers : 0 })
    }
  }

  const zoo = {
    format: DEMO_FORMAT,
    generator: 'git-zoo demo (src/demo/population.ts)',
    data_seed: o.dataSeed,
    datasets: Object.fromEntries([taskA, taskB].map((d) => [d.name, {
      ...(d === taskA ? o.taskA ?? TASK_A : o.taskB ?? TASK_B), features: d.features,
      test_x: `data/${d.name}-test.x.npy`, test_y: `data/${d.name}-test.y.npy`,
    }])),
    grid: { seeds: o.seeds, learning_rates: o.learningRates, activations: o.activations, inits: o.inits, hidden: o.hidden, epochs: o.epochs },
    models: models.map((m) => ({ path: m.path, kind: m.kind, dataset: m.config.dataset, parent: m.config.parent })),
  }
  await put('zoo.json', json(zoo))
  return { models, files, bytes, ms: performance.now() - started }
}
