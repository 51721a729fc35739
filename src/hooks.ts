/**
 * Installing and removing the zoo's git hooks without clobbering the user's own: a hook that is not
 * ours is moved aside to `<hook>.zoo-chained` and our hook runs it first; uninstall puts it back.
 */
import { readFile, writeFile, rename, rm, chmod, mkdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PROJECT_ROOT } from './version.js'
import type { Repo } from './repo.js'
import { CheckError } from './errors.js'

export const HOOKS = ['pre-commit', 'pre-push'] as const
const MARK = 'git-zoo'

async function hooksDir(repo: Repo): Promise<string> {
  return resolve(repo.root, (await repo.git(['rev-parse', '--git-path', 'hooks'])).trim())
}

async function readIf(path: string): Promise<string | null> {
  try { return await readFile(path, 'utf8') } catch { return null }
}

/** Whether a hook's text is the zoo's own hook (installed by `git zoo init`), not the user's. */
export function isOurs(text: string): boolean {
  return text.split('\n').slice(0, 3).some((l) => l.startsWith(`# ${MARK} `))
}

export interface HookChange { hook: string; action: 'installed' | 'updated' | 'chained' | 'unchanged' | 'removed' | 'restored' }

export async function installHooks(repo: Repo): Promise<HookChange[]> {
  const dir = await hooksDir(repo)
  await mkdir(dir, { recursive: true })
  const bin = join(PROJECT_ROOT, 'bin', 'git-zoo.js')
  // A hook of the user's is moved aside to <hook>.zoo-chained; when that name is taken too, neither
  // file can be kept safely, so nothing is changed (checked for every hook before any is touched).
  for (const hook of HOOKS) {
    const path = join(dir, hook)
    const existing = await readIf(path)
    const aside = `${path}.zoo-chained`
    if (existing !== null && !isOurs(existing) && await readIf(aside) !== null) {
      throw new CheckError(`your ${hook} hook cannot be chained: both ${path} and ${aside} exist, and git zoo will not overwrite either; `
        + `merge them into ${hook} (or delete the one you no longer need) and run \`git zoo init\` again`, 'E_HOOK_CONFLICT', { hook, path, aside })
    }
  }
  const out: HookChange[] = []
  for (const hook of HOOKS) {
    const ours = (await readFile(join(PROJECT_ROOT, 'hooks', hook), 'utf8')).replaceAll('@GIT_ZOO_BIN@', bin)
    const path = join(dir, hook)
    const existing = await readIf(path)
    let action: HookChange['action'] = 'installed'
    if (existing !== null && isOurs(existing)) {
      if (existing === ours) { out.push({ hook, action: 'unchanged' }); continue }
      action = 'updated'
    } else if (existing !== null) {
      await rename(path, `${path}.zoo-chained`)
      action = 'chained'
    }
    await writeFile(`${path}.zoo-tmp`, ours, { mode: 0o755 })
    await chmod(`${path}.zoo-tmp`, 0o755)
    await rename(`${path}.zoo-tmp`, path)
    out.push({ hook, action })
  }
  return out
}

export async function uninstallHooks(repo: Repo): Promise<HookChange[]> {
  const dir = await hooksDir(repo)
  const out: HookChange[] = []
  for (const hook of HOOKS) {
    const path = join(dir, hook)
    const existing = await readIf(path)
    if (existing === null || !isOurs(existing)) { out.push({ hook, action: 'unchanged' }); continue }
    await rm(path)
    const aside = `${path}.zoo-chained`
    try {
      await stat(aside)
      await rename(aside, path)
      out.push({ hook, action: 'restored' })
    } catch {
      out.push({ hook, action: 'removed' })
    }
  }
  return out
}
