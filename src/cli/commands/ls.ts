import type { Command } from '../command.js'
import { runCatalogQuery, QUERY_FLAGS } from '../query.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo ls [--all-versions] [--sort [-]<field>] [--limit <n>] [--json]

List the zoo's models (the latest version of each, sorted by name) from the catalog, with their
dataset, architecture, seed, main metric and parents. \`git zoo find\` filters the same list.

flags:
  --all-versions            every version, not only the latest
  --sort [-]<field>[,...]   order (default: name); fields as in \`git zoo find --help\`
  --limit <n>               show at most n models
  --refresh                 rebuild the catalog, looking at every manifest file in the work tree
  --json                    print { "models": [{ name, version, seal, metrics, params, ... }], "total" }

examples:
  git zoo ls
  git zoo ls --sort -metrics.test_acc --limit 20
  git zoo ls --json | jq '.models[].name'
`,
  flags: QUERY_FLAGS,
  async run(args, io) {
    if (args.positional.length) throw new UsageError(`git zoo ls takes no arguments (got ${args.positional[0]}); to filter, use git zoo find <filter>...`, 'E_USAGE')
    return runCatalogQuery(args, io, [], undefined)
  },
}
