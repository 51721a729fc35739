/**
 * Resolving a config's parent reference to a model folder of the import (spec/import.md, "Lineage").
 * The published zoos name parents by where they lay on the training machine:
 *   training::init_checkpoint_path  /abs/zoos/MNIST/tune_zoo_mnist_uniform/NN_tune_trainable_3c5e1_00012_12_seed=13_2021-...
 *   pretraining::model              sl_vit_s_16_224_seed_42_bs_256_lr_0.001_wd_0.0001_me_90
 * so a reference is matched, in order: as a folder relative to the import root; by its trial folder's
 * name (the path cut before any checkpoint_<n>/ segment); by Ray Tune's trial id (`<5 hex>_<5 digits>`
 * after the trainable's name); by prefix, because Ray cuts a trial folder's name at 130 characters
 * before it appends the date (either side may be the cut one). Ambiguous matches resolve to nothing.
 */
import { CHECKPOINT_DIR } from './run.js'

export interface Candidate { rel: string; name: string }

const RAY_DATE = /_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}[a-z0-9_]*$/i
const TRIAL_ID = /(?:^|_)([0-9a-f]{5}_\d{5})(?:_|$)/
const MIN_PREFIX = 24

/** The trial folder a reference names: its last path segment before checkpoint folders and files. */
export function trialFolderOf(ref: string): string {
  const segs = ref.split(/[\\/]+/).filter(Boolean)
  const cp = segs.findIndex((s) => CHECKPOINT_DIR.test(s))
  const upTo = cp === -1 ? segs : segs.slice(0, cp)
  return upTo[upTo.length - 1] ?? ''
}

export class ParentIndex {
  private readonly byRel = new Map<string, Candidate>()
  private readonly byBase = new Map<string, Candidate[]>()
  private readonly byTrial = new Map<string, Candidate[]>()
  private readonly stems: Array<[string, Candidate]> = []

  constructor(candidates: Candidate[]) {
    const add = <K>(m: Map<K, Candidate[]>, k: K, c: Candidate): void => { const l = m.get(k); if (l) l.push(c); else m.set(k, [c]) }
    for (const c of candidates) {
      this.byRel.set(c.rel, c)
      const base = c.rel.split('/').pop()!
      add(this.byBase, base, c)
      const id = TRIAL_ID.exec(base)
      if (id) add(this.byTrial, id[1]!, c)
      this.stems.push([base.replace(RAY_DATE, ''), c])
    }
  }

  resolve(ref: string): Candidate | undefined {
    const exact = this.byRel.get(ref.replace(/^\.\//, '').replace(/\/+$/, ''))
    if (exact) return exact
    const base = trialFolderOf(ref)
    if (!base) return undefined
    const one = (l: Candidate[] | undefined): Candidate | undefined => {
      if (!l || l.length === 0) return undefined
      if (l.length === 1) return l[0]
      // several folders share the name: the one whose path the reference ends with
      const tail = l.filter((c) => ref.replace(/\/+$/, '').endsWith(`/${c.rel}`) || ref.includes(`/${c.rel}/`))
      return tail.length === 1 ? tail[0] : undefined
    }
    const byName = one(this.byBase.get(base))
    if (byName) return byName
    const id = TRIAL_ID.exec(base)
    if (id) { const t = one(this.byTrial.get(id[1]!)); if (t) return t }
    const stem = base.replace(RAY_DATE, '')
    if (stem.length < MIN_PREFIX) return undefined
    return one(this.stems.filter(([s]) => s.length >= MIN_PREFIX && (s.startsWith(stem) || stem.startsWith(s))).map(([, c]) => c))
  }
}
