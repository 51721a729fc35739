/**
 * The repositories that use a store (several may share one: `zoo.store`, GIT_ZOO_STORE). Each
 * records its work tree in `<store>/repos/<id>.json` when it opens the store, so gc in any of them
 * keeps the objects the others' manifests need (src/zoo/gc.ts); a repository that is gone is forgotten
 * by the next gc.
 */
import { readdir, readFile, rm, access } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createHash } from 'node:crypto'
import { writeFileAtomic } from './atomic.js'

export interface StoreUser { file: string; workTree: string }

function fileOf(storeRoot: string, workTree: string): string {
  return join(storeRoot, 'repos', `${createHash('sha256').update(resolve(workTree)).digest('hex').slice(0, 16)}.json`)
}

/** Record that the repository at `workTree` uses the store (once; later calls only check). */
export async function registerStoreUser(storeRoot: string, workTree: string): Promise<void> {
  const file = fileOf(storeRoot, workTree)
  if (await access(file).then(() => true, () => false)) return
  await writeFileAtomic(file, JSON.stringify({ work_tree: resolve(workTree) }) + '\n')
}

/** Every repository recorded as a user of the store (unreadable records are skipped). */
export async function storeUsers(storeRoot: string): Promise<StoreUser[]> {
  let names: string[]
  try { names = await readdir(join(storeRoot, 'repos')) } catch { return [] }
  const out: StoreUser[] = []
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const file = join(storeRoot, 'repos', name)
    try {
      const v = JSON.parse(await readFile(file, 'utf8')) as { work_tree?: unknown }
      if (typeof v.work_tree === 'string') out.push({ file, workTree: v.work_tree })
    } catch { /* a record being written or damaged: the repository registers again when it opens the store */ }
  }
  return out
}

export async function forgetStoreUser(user: StoreUser): Promise<void> { await rm(user.file, { force: true }) }
