/**
 * Whether a clone is lazy and whether get must fetch first, in a module of its own: `verify` and `get` ask it on every run and must
 * not load the remotes (src/remote/sync.ts and the HTTP and S3 stores behind it) to learn it.
 */
import type { Repo } from '../repo.js'
import type { Manifest } from '../manifest/manifest.js'
import type { LocalStore } from '../cas/local.js'
import { parseCid } from '../cas/cid.js'
import { checkpointNode, expandManifest } from '../manifest/checkpoints.js'

/** Whether this clone was made with `git zoo clone --lazy` (objects come when get needs them). */
export async function isLazy(repo: Repo): Promise<boolean> {
  const r = await repo.runGit(['config', '--bool', '--get', 'zoo.lazy'])
  return r.code === 0 && r.stdout.trim() === 'true'
}

/**
 * Whether the local store lacks anything `get` needs first from `manifests`: a checkpoint node, or
 * the root object of a file (checkpoint files included). `get` then has the zoo remote fetch them
 * (ensureObjects in src/remote/sync.ts, loaded only then), which asks the same. A pure read:
 * locate() does not register the handle as a writer.
 */
export async function objectsMissing(manifests: Manifest[], store: LocalStore): Promise<boolean> {
  for (const m of manifests) {
    const node = checkpointNode(m)
    if (node && !(await store.locate(node))) return true
    for (const f of (await expandManifest(m, store)).files) {
      if (!(await store.locate(parseCid(f.root)))) return true
    }
  }
  return false
}
