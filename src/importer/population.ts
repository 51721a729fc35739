/**
 * Zoo-level records (spec/import.md, "Populations"). The Model Zoos generators write, beside a Ray
 * Tune experiment's trial folders, the zoo's `config.json` (the grid with its `tune.grid_search`
 * values), a `readme.md`, and the published downloads add `index_dict.json` (where each layer's
 * weights sit in the vectorised form). The nearest folder above a model that holds one of these
 * files is the model's population: the files are committed verbatim under `zoos/<name>/` and each
 * model's manifest names the population (`population`, sealed).
 */
import { readdir } from 'node:fs/promises'
import { join, basename } from 'node:path'
import { nameFor } from './layout.js'

export const POPULATIONS_DIR = 'zoos'
/** Zoo-level files recorded for a population, matched case-insensitively. */
export const POPULATION_FILES = ['config.json', 'index_dict.json', 'readme.md', 'zoo_card.md']

export interface Population {
  /** Folder relative to the import root ('' for the root itself). */
  rel: string
  dir: string
  name: string
  files: Array<{ path: string; source: string }>
  models: number
}

export interface Populations {
  list: Population[]
  of(modelRel: string): Population | undefined
}

export async function findPopulations(root: string, models: Array<{ rel: string }>, prefix?: string): Promise<Populations> {
  const modelRels = new Set(models.map((m) => m.rel))
  const checked = new Map<string, Population | null>()
  const probe = async (rel: string): Promise<Population | null> => {
    const have = checked.get(rel)
    if (have !== undefined) return have
    const dir = rel ? join(root, rel) : root
    let names: string[] = []
    try { names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name) } catch { /* unreadable: none */ }
    const files = names.filter((n) => POPULATION_FILES.includes(n.toLowerCase())).sort().map((n) => ({ path: n, source: join(dir, n) }))
    const p = files.length && !modelRels.has(rel)
      ? { rel, dir, name: rel ? nameFor(prefix, rel) : nameFor(undefined, [prefix, basename(root)].filter(Boolean).join('/')), files, models: 0 }
      : null
    checked.set(rel, p)
    return p
  }
  const byModel = new Map<string, Population>()
  for (const m of models) {
    const segs = m.rel.split('/')
    for (let i = segs.length - 1; i >= 0; i--) {
      const p = await probe(segs.slice(0, i).join('/'))
      if (p) { p.models++; byModel.set(m.rel, p); break }
    }
  }
  const list = [...checked.values()].filter((p): p is Population => p !== null && p.models > 0)
  return { list, of: (rel) => byModel.get(rel) }
}

/** What a population import commits: its files, verbatim, under zoos/<name>/. */
export async function populationFiles(list: Population[]): Promise<Array<{ path: string; copyFrom: string }>> {
  return list.flatMap((p) => p.files.map((f) => ({ path: `${POPULATIONS_DIR}/${p.name}/${f.path}`, copyFrom: f.source })))
}
