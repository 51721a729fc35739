import type { Command } from '../command.js'
import { runCatalogQuery, QUERY_FLAGS } from '../query.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo ls [--all-versions] [--include-retired] [--sort [-]<field>] [--limit <n>] [--no-pager] [--json]

List the zoo's models (sorted by name) from the catalog, with their dataset, architecture, seed,
main metric and parents: for each model its latest version in service (retired versions are
skipped), or, when every version of it is retired, its latest version marked retired, so every
model is listed. \`git zoo find\` filters the versions in service.

flags:
  --all-versions            every version in service, not only the latest
  --include-retired         retired versions count too: each model's latest version whatever its
                            status (with --all-versions: every version)
  --sort [-]<field>[,...]   order (default: name); fields as in \`git zoo find --help\`
  --limit <n>               show at most n models
  --refresh                 rebuild the catalog, looking at every manifest file in the work tree
  --json                    print { "models": [{ name, version, seal, metrics, params, ... }], "total" }
  --no-pager                print the whole listing; on a terminal it otherwise goes through
                            git's pager (GIT_PAGER, core.pager, PAGER, less), as git log does

examples:
  git zoo ls
  git zoo ls --sort -metrics.test_acc --limit 20
  git zoo ls --json | jq '.models[].name'
`,
  flags: QUERY_FLAGS,
  async run(args, io) {
    if (args.positional.length) throw new UsageError(`git zoo ls takes no arguments (got ${args.positional[0]}); to filter, use git zoo find <filter>...`, 'E_USAGE')
    return runCatalogQuery(args, io, [], undefined, { everyModel: true })
  },
}
