/**
 * The training config of a run folder given to `git zoo add` (config.json, params.json or
 * hparams.json at its top, the files `git zoo import` reads): its generating factors (seed, dataset,
 * arch, the other settings as params), read by the importer's rules (src/importer/factors.ts,
 * spec/import.md) so `add` and `import` of the same folder record the same factors.
 */
import { readdir, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { CONFIG_FILES } from './run.js'
import { factorsFromConfig, readConfig, type Factors } from './factors.js'

export interface RunConfig { file: string; factors: Factors }

/**
 * The config of the first folder among `paths` (relative to `cwd`) that holds one at its top, or
 * undefined. A file that is there but is not a JSON object is an error (E_RUN_CONFIG), as in import.
 */
export async function runFolderConfig(paths: string[], cwd: string): Promise<RunConfig | undefined> {
  for (const p of paths) {
    const dir = resolve(cwd, p)
    try { if (!(await stat(dir)).isDirectory()) continue } catch { continue }
    const names = new Set((await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name))
    const name = CONFIG_FILES.find((n) => names.has(n))
    if (!name) continue
    const file = resolve(dir, name)
    return { file, factors: factorsFromConfig(await readConfig(file)) }
  }
  return undefined
}
