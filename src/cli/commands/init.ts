import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { initZoo, hookNotes } from '../../zoo/init.js'

export const command: Command = {
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
  interrupted: 'run `git zoo init` again (it is idempotent)',
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    const r = await initZoo(await Repo.open(io.cwd, io))
    if (bool(args, 'json')) printJson(io, r)
    else io.err(hookNotes(r.hooks))
    return 0
  },
}
