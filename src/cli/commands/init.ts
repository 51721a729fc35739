import { readdir, readFile, mkdir, copyFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo, ZOO_DIR } from '../../repo.js'
import { installHooks } from '../../hooks.js'
import { PROJECT_ROOT } from '../../version.js'

const IGNORE = ['.zoo/cache/']

export const command: Command = {
  summary: 'set this git repository up as a zoo (idempotent)',
  help: `usage: git zoo init [--json]

Set the current git repository up as a model zoo. Safe to run again at any time.
  - creates .zoo/ (config.json, schema.json, README.md) from git-zoo's .zoo-template, keeping
    files that already exist, and stages it
  - adds .zoo/cache/ (the derived catalog index) to .gitignore
  - installs the pre-commit and pre-push hooks; a hook you wrote is kept and run first
    (moved to <hook>.zoo-chained; \`git zoo uninstall\` puts it back). If <hook>.zoo-chained
    exists too, no hook is touched and init exits 1 (E_HOOK_CONFLICT) until you merge the two
The object store is created on first use under .git/zoo/ (or where \`git config zoo.store\` says).

flags:
  --json   print what was done as JSON

example:
  git init my-zoo && cd my-zoo && git zoo init
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io.env)
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
    if (bool(args, 'json')) printJson(io, { root: repo.root, store: await repo.storeRoot(), created, hooks })
    else {
      for (const h of hooks) if (h.action === 'chained') io.err(`git zoo: your ${h.hook} hook was kept as ${h.hook}.zoo-chained and runs before the zoo's\n`)
    }
    return 0
  },
}
