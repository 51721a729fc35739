import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson, summary } from '../output.js'
import { Repo } from '../../repo.js'
import { uninstallHooks } from '../../hooks.js'

export const command: Command = {
  help: `usage: git zoo uninstall [--json]

Remove the git hooks \`git zoo init\` installed (pre-commit, pre-push). Only hooks git-zoo wrote
are removed; a hook of yours that init kept as <hook>.zoo-chained is put back in its place, and a
hook that is not git-zoo's is left alone. The models, .zoo/ and the object store are not touched;
\`git zoo init\` installs the hooks again.

flags:
  --json   print { hooks: [{ hook, action }] } with action removed, restored or unchanged

example:
  git zoo uninstall
`,
  interrupted: 'run `git zoo uninstall` again',
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    const hooks = await uninstallHooks(repo)
    if (bool(args, 'json')) printJson(io, { hooks })
    else {
      // one summary line: what happened to each hook
      const said = hooks.map((h) => h.action === 'restored' ? `removed the zoo's ${h.hook} hook and put your own back`
        : h.action === 'removed' ? `removed the zoo's ${h.hook} hook` : `no zoo ${h.hook} hook installed (left as it is)`)
      summary(io, `git zoo: ${said.join('; ')}`)
    }
    return 0
  },
}
