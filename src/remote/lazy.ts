/**
 * Whether a clone is lazy, in a module of its own: `verify` and `get` ask it on every run and must
 * not load the remotes (src/remote/sync.ts and the HTTP and S3 stores behind it) to learn it.
 */
import type { Repo } from '../repo.js'

/** Whether this clone was made with `git zoo clone --lazy` (objects come when get needs them). */
export async function isLazy(repo: Repo): Promise<boolean> {
  const r = await repo.runGit(['config', '--bool', '--get', 'zoo.lazy'])
  return r.code === 0 && r.stdout.trim() === 'true'
}
