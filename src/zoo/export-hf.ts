/**
 * `git zoo export <model> --format hf`: a folder the Hugging Face Hub takes as is (spec/hf.md):
 * the model's files exactly as stored (weights, sharded safetensors with their index, config,
 * tokenizer and the rest; each byte verified on the way out), the training config snapshot when
 * no file of the model has its name, and a README.md model card whose front matter is the Hub's:
 * license, base_model (the Hub ids of the parents that have one), base_model_relation, datasets,
 * tags and model-index with the final metrics and the recorded evaluations.
 */
import { readFile, readdir, writeFile, rename, mkdir } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import type { Repo } from '../repo.js'
import type { Store } from '../cas/store.js'
import { manifestDir, type Manifest } from '../manifest/manifest.js'
import { renderModelCard, CARD_FILE, type CardExtras } from '../manifest/card.js'
import { writeModelFiles, type WriteOptions, type WrittenFile } from './checkout.js'
import { CheckError, UsageError } from '../errors.js'

/** A Hub model id: `name` or `org/name` of letters, digits, `-`, `_`, `.`. */
export const HUB_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/

/** The Hub id a zoo model was imported from (`params.hf_id`, set by `import --layout hf`), if any. */
export function hubIdOf(m: Manifest): string | undefined {
  const id = m.params.hf_id
  return typeof id === 'string' && HUB_ID.test(id) ? id : undefined
}

export interface ExportResult { out: string; files: WrittenFile[]; card: string; config?: string; base_model: string[] }

/**
 * Write `m` to `outDir` (new or empty) for the Hub. `extras` carries the evaluations and stages the
 * card lists; the parents' Hub ids are looked up here.
 */
export async function exportHf(repo: Repo, m: Manifest, store: Store, outDir: string, extras: CardExtras, opts: WriteOptions = {}): Promise<ExportResult> {
  const out = resolve(outDir)
  let existing: string[] = []
  try { existing = await readdir(out) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
  if (existing.length) throw new UsageError(`${outDir} is not empty; export into a new or empty folder (the Hub folder holds exactly the model's files)`, 'E_NOT_EMPTY', { path: out })
  const bases: string[] = []
  for (const p of m.parents) {
    let pm: Manifest | undefined
    try { pm = await repo.readManifest(p.name, p.version) } catch { pm = undefined }
    const id = pm ? hubIdOf(pm) : undefined
    if (id) bases.push(id)
  }
  // Hub models it came from that are not in the zoo (recorded by `import --layout hf`)
  const recorded = m.params.hf_base_model
  for (const id of Array.isArray(recorded) ? recorded : [recorded]) if (typeof id === 'string' && HUB_ID.test(id) && !bases.includes(id)) bases.push(id)
  await mkdir(out, { recursive: true })
  const files = await writeModelFiles(m, store, out, opts)
  let config: string | undefined
  if (m.config && !m.files.some((f) => f.path === m.config!.path)) {
    const src = join(repo.root, manifestDir(m.name, m.version), m.config.path)
    const bytes = await readFile(src)
    if (createHash('sha256').update(bytes).digest('hex') !== m.config.sha256) {
      throw new CheckError(`${src} does not match the sha256 its manifest records; restore it with \`git checkout -- ${manifestDir(m.name, m.version)}\``, 'E_SEAL_MISMATCH', { path: src })
    }
    await writeFile(join(out, m.config.path), bytes)
    config = m.config.path
  }
  let card = CARD_FILE
  if (!m.files.some((f) => f.path === CARD_FILE)) {
    const tmp = join(out, `.${CARD_FILE}.tmp`)
    await writeFile(tmp, renderModelCard(m, { ...extras, hubBaseModels: bases }))
    await rename(tmp, join(out, CARD_FILE))
  } else card = ''
  return { out, files, card, ...(config ? { config } : {}), base_model: bases }
}
