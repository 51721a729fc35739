import type { Command, Io } from '../command.js'
import type { Parsed, FlagSpecs } from '../args.js'
import { bool, int, str } from '../args.js'
import { printJson } from '../output.js'
import { openCatalog } from '../../catalog/catalog.js'
import { parseFilter, runQuery, summarize, finalMetricKeys, needsHistory, type Filter } from '../../catalog/query.js'
import { renderTable } from '../../catalog/table.js'
import { UsageError } from '../../errors.js'
import { runGit } from '../../git/git.js'
import { MODELS_DIR } from '../../manifest/manifest.js'
import { RETIRED_FILE } from '../../promote/retire.js'

export function parseSort(text: string | undefined): Array<{ field: string; desc: boolean }> {
  if (!text) return []
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (s.startsWith('-') ? { field: s.slice(1), desc: true } : { field: s.replace(/^\+/, ''), desc: false }))
}

/** The flags ls and find share. */
export const QUERY_FLAGS: FlagSpecs = {
  sort: { type: 'string', value: '[-]field' },
  limit: { type: 'string', value: 'n' },
  'all-versions': { type: 'bool' },
  refresh: { type: 'bool' },
  json: { type: 'bool' },
}

/** `name@vN` of every retired version, from the index (one git call, whatever the zoo's size). */
async function retiredVersions(io: Io): Promise<Set<string>> {
  const r = await runGit(io.cwd, ['ls-files', '-z', '--full-name', '--', `:(top)${MODELS_DIR}/*/${RETIRED_FILE}`], { env: io.env })
  const out = new Set<string>()
  if (r.code !== 0) return out
  for (const path of r.stdout.split('\0')) {
    const m = new RegExp(`^${MODELS_DIR}/(.+)/v([1-9]\\d*)/${RETIRED_FILE.replace('.', '\\.')}$`).exec(path)
    if (m) out.add(`${m[1]}@v${m[2]}`)
  }
  return out
}

/** Shared by ls and find: open the catalog, run the query, print a table or JSON. */
export async function runCatalogQuery(args: Parsed, io: Io, filters: Filter[], defaultSort: string | undefined): Promise<number> {
  const limit = int(args, 'limit')
  if (limit !== undefined && limit < 0) throw new UsageError('--limit takes a number >= 0', 'E_USAGE')
  const sort = parseSort(str(args, 'sort') ?? defaultSort)
  const history = [...filters.map((f) => f.field), ...sort.map((s) => s.field)].some(needsHistory)
  const opened = await openCatalog({ cwd: io.cwd, env: io.env, refresh: bool(args, 'refresh'), history, ...(io.tty ? { progress: (t: string) => io.err(t) } : {}) })
  const c = opened.file
  try {
    const q = runQuery(c, { filters, sort, ...(limit !== undefined ? { limit } : {}), allVersions: bool(args, 'all-versions') })
    if (c.header.problemCount > 0) {
      const p = c.header.problems[0]
      io.err(`git zoo: warning: ${c.header.problemCount} manifest${c.header.problemCount === 1 ? '' : 's'} could not be indexed${p ? ` (${p.path}: ${p.problem})` : ''}; run \`git zoo verify\`\n`)
    }
    const retired = await retiredVersions(io)
    const mark = (m: { name?: unknown; version?: unknown }): boolean => retired.has(`${m.name}@v${m.version}`)
    if (bool(args, 'json')) {
      const keys = finalMetricKeys(c)
      printJson(io, { models: q.rows.map((r) => summarize(c, r, [...q.fields, ...q.sortFields], keys)).map((m) => (mark(m) ? { ...m, retired: true } : m)), total: q.total })
    } else if (q.rows.length === 0) {
      io.err(c.count === 0 ? 'git zoo: this zoo has no models yet; `git zoo add` or `git zoo import` adds some\n' : 'git zoo: no model matches\n')
    } else {
      io.out(renderTable(c, q.rows, [...q.fields.filter((f) => !f.test), ...q.sortFields], { total: q.total }))
      const shown = q.rows.map((r) => summarize(c, r, [], [])).filter(mark).map((m) => `${m.name}@v${m.version}`)
      if (shown.length) io.out(`retired (see \`git zoo log\`): ${shown.join(', ')}\n`)
    }
  } finally { c.close() }
  return 0
}

export const command: Command = {
  summary: 'find models by metrics and generating factors',
  help: `usage: git zoo find <filter>... [--sort [-]<field>[,...]] [--limit <n>] [--all-versions] [--json]

Search the zoo's catalog: a cached index of every manifest (rebuilt by itself when the manifests
change; see spec/catalog.md). A filter is <field><op><value>; all filters must hold. Quote filters
that hold < or >, which the shell reads as redirections. Only the latest version of each model is
searched unless --all-versions is given or a filter uses \`version\`.

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
  relation                          a parent's relation: fine-tune, adapter, merge, soup, ...
  parent  ancestor                  a direct parent / any ancestor: name, name@vN or seal

ops:
  =  !=  <  <=  >  >=               numbers compare as numbers, text as text;
                                    field= matches models without the field, field!= those with it
  ~                                 text match: /regex/flags; a glob when the value has * or ?
                                    (whole value, any case); else a substring (any case)
A model without the field matches no filter on it except !=.

flags:
  --sort [-]<field>[,...]   order by fields; a leading - sorts descending; missing values last
  --limit <n>               show at most n models
  --all-versions            search every version, not only the latest of each model
  --refresh                 rebuild the catalog, looking at every manifest file in the work tree
  --json                    print { "models": [{ name, version, seal, metrics, params, ... }], "total" }

examples:
  git zoo find dataset=cifar10 'metrics.test_acc>0.6' seed=3
  git zoo find 'best.val_loss<0.5' --sort best.val_loss --limit 10
  git zoo find 'test_acc@10>=0.5' params.optimizer=adam --sort -metrics.test_acc
  git zoo find ancestor=vit-s/pretrain relation=fine-tune --json
  git zoo find 'name~vit-*/cifar100/*' --sort -created
`,
  flags: QUERY_FLAGS,
  async run(args, io) {
    if (args.positional.length === 0) throw new UsageError('give at least one filter, e.g. git zoo find \'metrics.test_acc>0.6\' (git zoo ls lists every model)', 'E_USAGE')
    return runCatalogQuery(args, io, args.positional.map(parseFilter), undefined)
  },
}
