/** What `ls` and `find` share: their flags, and running a catalog query to a table or JSON. */
import { dirname } from 'node:path'
import type { Io } from './command.js'
import type { Parsed, FlagSpecs } from './args.js'
import { bool, int, str } from './args.js'
import { printJson } from './output.js'
import { paged } from './pager.js'
import { openCatalog, cachePath } from '../catalog/catalog.js'
import { stagesByVersion } from '../catalog/stages.js'
import { parseSort, runQuery, summarize, finalMetricKeys, needsHistory, type Filter } from '../catalog/query.js'
import { renderTable } from '../catalog/table.js'
import { UsageError } from '../errors.js'
import { zooFields, isZooField } from '../evals/query-fields.js'

/** The flags ls and find share. */
export const QUERY_FLAGS: FlagSpecs = {
  sort: { type: 'string', value: '[-]field' },
  limit: { type: 'string', value: 'n' },
  'all-versions': { type: 'bool' },
  'include-retired': { type: 'bool' },
  refresh: { type: 'bool' },
  json: { type: 'bool' },
  'no-pager': { type: 'bool' },
}

/** Shared by ls and find: open the catalog, run the query, print a table or JSON. */
export async function runCatalogQuery(args: Parsed, io: Io, filters: Filter[], defaultSort: string | undefined, opts: { everyModel?: boolean } = {}): Promise<number> {
  const limit = int(args, 'limit')
  if (limit !== undefined && limit < 0) throw new UsageError('--limit takes a number >= 0', 'E_USAGE')
  const sort = parseSort(str(args, 'sort') ?? defaultSort)
  const history = [...filters.map((f) => f.field), ...sort.map((s) => s.field)].some(needsHistory)
  let opened = await openCatalog({ cwd: io.cwd, env: io.env, refresh: bool(args, 'refresh'), history, ...(io.tty ? { progress: (t: string) => io.err(t) } : {}) })
  // rows without history (checkpoint nodes not in the local store: a lazy clone): fetched and read again
  if (history && opened.file.unfetched().length > 0) opened = await (await import('./catalog-history.js')).withHistory(opened, io)
  const c = opened.file
  let listing: string | undefined
  try {
    // stages (shown in every listing) and evaluations live outside the catalog: read when needed
    const named = [...filters.map((f) => f.field), ...sort.map((s) => s.field)]
    const zoo = { root: opened.places.root, stagesByVersion: () => stagesByVersion(opened.places, io.env, dirname(opened.path)) }
    const version = c.f64('version')
    const extra = await zooFields(zoo, { name: (i) => c.str('name', i)!, version: (i) => version![i]!, seal: (i) => c.str('seal', i)! }, named.filter(isZooField), true)
    const q = runQuery(c, { filters, sort, ...(limit !== undefined ? { limit } : {}), allVersions: bool(args, 'all-versions'), includeRetired: bool(args, 'include-retired'), everyModel: opts.everyModel ?? false, extraField: extra.resolve })
    if (c.header.problemCount > 0) {
      const p = c.header.problems[0]
      io.err(`git zoo: warning: ${c.header.problemCount} manifest${c.header.problemCount === 1 ? '' : 's'} could not be indexed${p ? ` (${p.path}: ${p.problem})` : ''}; run \`git zoo verify\`\n`)
    }
    const retired = c.retired()
    if (bool(args, 'json')) {
      const keys = finalMetricKeys(c)
      printJson(io, { models: q.rows.map((r) => { const m = { ...summarize(c, r, [...q.fields, ...q.sortFields], keys), stages: extra.stagesOf(r) }; return retired[r] ? { ...m, retired: true } : m }), total: q.total })
    } else if (q.rows.length === 0) {
      io.err(c.count === 0 ? 'git zoo: this zoo has no models yet; `git zoo add` or `git zoo import` adds some\n' : 'git zoo: no model matches\n')
    } else {
      const used = [...q.fields.filter((f) => !f.test), ...q.sortFields]
      if (q.rows.some((r) => extra.stagesOf(r).length)) used.push({ name: 'stage', numeric: false, get: (i) => extra.stagesOf(i).join(',') || undefined })
      let text = renderTable(c, q.rows, used, { total: q.total })
      const shown = q.rows.filter((r) => retired[r]).map((r) => `${c.str('name', r)}@v${c.f64('version')![r]}`)
      if (shown.length) text += `retired (see \`git zoo log\`): ${shown.join(', ')}\n`
      listing = text
    }
  } finally { c.close() }
  // the catalog is closed before a pager holds the terminal (it may stay open for minutes)
  if (listing !== undefined) await paged(io, listing, bool(args, 'no-pager'))
  return 0
}
