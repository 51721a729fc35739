/**
 * Setting a repository up as a zoo (`git zoo init`, and `git zoo clone` after cloning). Idempotent:
 * files that exist are kept, hooks already installed are left as they are.
 */
import { readdir, readFile, mkdir, copyFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve, dirname, relative, sep, isAbsolute } from 'node:path'
import { writeFileAtomic } from '../cas/atomic.js'
import { type Repo, ZOO_DIR } from '../repo.js'
import { installHooks, type HookChange } from '../hooks.js'
import { PROJECT_ROOT } from '../version.js'

/** Lines .gitignore must hold: the derived catalog index is never committed. */
const IGNORE = ['.zoo/cache/']

/**
 * What `ignoreOutput` did: `ignored` (lines were added to .git/info/exclude: `patterns`), `already`
 * (git ignores it all already), `outside` (nothing written is in the work tree).
 */
export interface IgnoreResult { result: 'ignored' | 'already' | 'outside'; patterns: string[] }

/**
 * Make git ignore what `git zoo get` wrote inside the work tree, so `git add .` never picks the
 * weights up (the pre-commit hook would refuse them). The lines go to .git/info/exclude, which
 * belongs to this clone only (nothing to commit): `/<folder>/` for the output folder, or, when that
 * folder is the top of the work tree or holds tracked files (not the zoo's to hide), `/<file>` for
 * each file written that git does not track.
 */
export async function ignoreOutput(repo: Repo, dir: string, files: string[]): Promise<IgnoreResult> {
  const relOf = (p: string): string | undefined => {
    const rel = relative(repo.root, p).split(sep).join('/')
    return rel === '' || rel.startsWith('../') || rel === '..' || isAbsolute(rel) ? undefined : rel
  }
  const ignored = async (rel: string): Promise<boolean> => (await repo.runGit(['check-ignore', '-q', '--no-index', '--', rel])).code === 0
  const inside = files.map(relOf).filter((r): r is string => r !== undefined)
  if (inside.length === 0) return { result: 'outside', patterns: [] }
  const relDir = relOf(dir)
  let patterns: string[]
  if (relDir !== undefined && (await repo.git(['ls-files', '--', relDir])).trim() === '') {
    patterns = (await ignored(`${relDir}/x`)) ? [] : [`/${relDir}/`]
  } else {
    const tracked = new Set((await repo.git(['ls-files', '-z', '--', ...inside])).split('\0'))
    patterns = []
    for (const rel of inside) if (!tracked.has(rel) && !(await ignored(rel))) patterns.push(`/${rel}`)
  }
  if (patterns.length === 0) return { result: 'already', patterns }
  const exclude = resolve(repo.root, (await repo.git(['rev-parse', '--git-path', 'info/exclude'])).trim())
  let text = ''
  try { text = await readFile(exclude, 'utf8') } catch { /* none yet */ }
  await mkdir(dirname(exclude), { recursive: true })
  await writeFileAtomic(exclude, text + (text && !text.endsWith('\n') ? '\n' : '') + `# written by git zoo get\n${patterns.join('\n')}\n`)
  return { result: 'ignored', patterns }
}

export interface InitResult { root: string; store: string; created: string[]; hooks: HookChange[] }

/**
 * Create `.zoo/` from git-zoo's `.zoo-template` (keeping files that exist) and stage it, add the
 * catalog cache to `.gitignore`, and install the hooks (a hook the user wrote is kept and chained).
 */
export async function initZoo(repo: Repo): Promise<InitResult> {
  const created: string[] = []
  const template = join(PROJECT_ROOT, '.zoo-template')
  await mkdir(join(repo.root, ZOO_DIR), { recursive: true })
  for (const name of await readdir(template)) {
    const target = join(repo.root, ZOO_DIR, name)
    try { await stat(target) } catch {
      await copyFile(join(template, name), target)
      created.push(`${ZOO_DIR}/${name}`)
    }
  }
  const gi = join(repo.root, '.gitignore')
  let text = ''
  try { text = await readFile(gi, 'utf8') } catch { /* none yet */ }
  const lines = new Set(text.split('\n').map((l) => l.trim()))
  const missing = IGNORE.filter((l) => !lines.has(l))
  if (missing.length) {
    await writeFile(gi, text + (text && !text.endsWith('\n') ? '\n' : '') + missing.join('\n') + '\n')
    created.push('.gitignore')
  }
  await repo.git(['add', '--', ZOO_DIR, '.gitignore'])
  const hooks = await installHooks(repo)
  return { root: repo.root, store: await repo.storeRoot(), created, hooks }
}

/** What a user should be told about the hooks: a hook of theirs that now runs before the zoo's. */
export function hookNotes(hooks: HookChange[]): string {
  return hooks.filter((h) => h.action === 'chained').map((h) => `git zoo: your ${h.hook} hook was kept as ${h.hook}.zoo-chained and runs before the zoo's\n`).join('')
}
