/**
 * Setting a repository up as a zoo (`git zoo init`, and `git zoo clone` after cloning). Idempotent:
 * files that exist are kept, hooks already installed are left as they are.
 */
import { readdir, readFile, mkdir, copyFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve, dirname } from 'node:path'
import { type Repo, ZOO_DIR } from '../repo.js'
import { installHooks, type HookChange } from '../hooks.js'
import { PROJECT_ROOT } from '../version.js'

/**
 * Where `git zoo get` writes when no --out is given: <root>/.zoo/checkout/<model>/v<N>/, a folder
 * git ignores, so the weights never reach `git add .` (which the pre-commit hook would refuse).
 */
export const CHECKOUT_DIR = '.zoo/checkout'

/**
 * Lines .gitignore must hold: the derived catalog index is never committed, nor what `git zoo get`
 * writes by default.
 */
const IGNORE = ['.zoo/cache/', `${CHECKOUT_DIR}/`]

/** The folder `git zoo get <model>@v<N>` writes to without --out. */
export function defaultCheckoutDir(repo: Repo, name: string, version: number): string {
  return join(repo.root, CHECKOUT_DIR, ...name.split('/'), `v${version}`)
}

/**
 * Make sure git ignores CHECKOUT_DIR in a zoo set up before `init` listed it in .gitignore: the line
 * goes to .git/info/exclude (this clone only, nothing to commit). Returns whether a line was added.
 */
export async function ensureCheckoutIgnored(repo: Repo): Promise<boolean> {
  const probe = await repo.runGit(['check-ignore', '-q', '--no-index', '--', `${CHECKOUT_DIR}/x`])
  if (probe.code === 0) return false
  const exclude = resolve(repo.root, (await repo.git(['rev-parse', '--git-path', 'info/exclude'])).trim())
  let text = ''
  try { text = await readFile(exclude, 'utf8') } catch { /* none yet */ }
  await mkdir(dirname(exclude), { recursive: true })
  await writeFile(exclude, text + (text && !text.endsWith('\n') ? '\n' : '') + `/${CHECKOUT_DIR}/\n`)
  return true
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
