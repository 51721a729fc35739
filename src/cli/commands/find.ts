import type { Command } from '../command.js'
import { parseFilter } from '../../catalog/query.js'
import { UsageError } from '../../errors.js'
import { QUERY_FLAGS, runCatalogQuery } from '../query.js'

export const command: Command = {
  help: `usage: git zoo find <filter>... [--sort [-]<field>[,...]] [--limit <n>] [--all-versions] [--json]

Search the zoo's catalog: a cached index of every manifest (rebuilt by itself when the manifests
change; see spec/catalog.md). A filter is <field><op><value>; all filters must hold. Quote filters
that hold < or >, which the shell reads as redirections. Only the latest version in service of each
model is searched (retired versions are skipped, so a retired v2 leaves v1 to be found) unless
--all-versions is given or a filter uses \`version\`; retired versions are searched only with
--include-retired.

fields:
  name version seal seed dataset arch created promoter
  files size checkpoints epochs     file count, total bytes, checkpoint count, history length
  params.<k>                        a generating factor (a bare <k> works when no metric has that name)
  metrics.<k>  (or just <k>)        the final value of a metric
  best.<k>                          the best value over the history: the minimum for losses and
                                    errors (names with loss, err, mse, mae, perplexity, gap), else
                                    the maximum
  max.<k>  min.<k>                  maximum / minimum over the history
  <k>@<epoch>                       the value at an epoch, e.g. test_acc@10 (epochs 0-255)
                                    (history fields read each model's checkpoint node; a lazy
                                    clone fetches the nodes it lacks from the zoo remote, verified)
  relation                          a parent's relation: fine-tune, adapter, merge, soup, ...
  parent  ancestor                  a direct parent / any ancestor: name, name@vN or seal
  stage                             a stage naming the version (git zoo tag); a filter on it
                                    searches every version: stage=prod, stage= (none), stage~p*
  eval.<k>                          metric k of the version's latest evaluation (git zoo eval)
  eval[<data>].<k>                  metric k of its latest evaluation on <data>: the data's
                                    name as recorded (test.npz) or a sha256 prefix (8+ hex)

ops:
  =  !=  <  <=  >  >=               numbers compare as numbers, text as text;
                                    field= matches models without the field, field!= those with it
  ~                                 text match: /regex/flags; a glob when the value has * or ?
                                    (whole value, any case); else a substring (any case)
A model without the field matches no filter on it except !=.

flags:
  --sort [-]<field>[,...]   order by fields; a leading - sorts descending; missing values last
  --limit <n>               show at most n models
  --all-versions            search every version in service, not only the latest of each model
  --include-retired         retired versions count too (marked "retired": true in --json)
  --refresh                 rebuild the catalog, looking at every manifest file in the work tree
  --json                    print { "models": [{ name, version, seal, metrics, params, ... }], "total" }
  --no-pager                print the whole listing; on a terminal it otherwise goes through
                            git's pager (GIT_PAGER, core.pager, PAGER, less), as git log does

examples:
  git zoo find dataset=cifar10 'metrics.test_acc>0.6' seed=3
  git zoo find 'best.val_loss<0.5' --sort best.val_loss --limit 10
  git zoo find 'test_acc@10>=0.5' params.optimizer=adam --sort -metrics.test_acc
  git zoo find ancestor=vit-s/pretrain relation=fine-tune --json
  git zoo find 'name~vit-*/cifar100/*' --sort -created
  git zoo find dataset=cifar10 --all-versions --include-retired   # every version ever promoted
  git zoo find stage=prod
  git zoo find 'eval.accuracy>0.9' --sort '-eval[test.npz].accuracy'
`,
  flags: QUERY_FLAGS,
  async run(args, io) {
    if (args.positional.length === 0) throw new UsageError('give at least one filter, e.g. git zoo find \'metrics.test_acc>0.6\' (git zoo ls lists every model)', 'E_USAGE')
    return runCatalogQuery(args, io, args.positional.map(parseFilter), undefined)
  },
}
