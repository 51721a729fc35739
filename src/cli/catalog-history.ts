/**
 * A query on history (`best.`, `max.`, `min.`, `<metric>@<epoch>`, `epochs`) in a zoo whose catalog
 * has rows without it: their checkpoint nodes were not in the local store when it was built (a lazy
 * clone, spec/catalog.md "History in a lazy clone"). The nodes are read through the zoo's reader
 * (fetched from the zoo remotes in a lazy clone, verified against their CIDs, kept in memory), those
 * rows are read again with them, and the catalog is opened anew; in rounds of HISTORY_ROUND
 * versions, so the blocks held stay bounded. Loaded only then (ls and find load no store code
 * otherwise).
 */
import type { Io } from './command.js'
import { openCatalog, type OpenedCatalog } from '../catalog/catalog.js'
import { manifestPathOf } from '../catalog/columns.js'
import { Repo } from '../repo.js'
import { checkpointNodes, type NodeMiss } from '../zoo/reader.js'
import { isLazy } from '../remote/lazy.js'
import { ZooError } from '../errors.js'

/** How many models an E_HISTORY_UNAVAILABLE message names. */
const NAMED = 5
/** Versions whose nodes one round fetches and reads into the catalog (~15 KB a node for 51 checkpoints). */
const HISTORY_ROUND = 4096

export async function withHistory(opened: OpenedCatalog, io: Io): Promise<OpenedCatalog> {
  const c = opened.file
  const version = c.f64('version')!
  const versions = c.unfetched().map((r) => ({ name: c.str('name', r)!, version: version[r]! }))
  c.close()
  const repo = await Repo.open(io.cwd, io)
  const lazy = await isLazy(repo)
  if (io.tty && lazy) io.err(`git zoo: fetching the checkpoint nodes of ${versions.length} model${versions.length === 1 ? '' : 's'} for their history (once; the catalog keeps it)\n`)
  const missing: NodeMiss[] = []
  let again: OpenedCatalog | undefined
  for (let at = 0; at < versions.length; at += HISTORY_ROUND) {
    const round = versions.slice(at, at + HISTORY_ROUND)
    const got = await checkpointNodes(repo, round, io.signal ? { signal: io.signal } : {})
    missing.push(...got.missing)
    // what did arrive is read into the catalog even when some did not
    again?.file.close()
    again = await openCatalog({
      cwd: io.cwd, env: io.env, history: true, fetched: { blocks: got.blocks, paths: new Set(round.map((v) => manifestPathOf(v.name, v.version))) },
      ...(io.tty ? { progress: (t: string) => io.err(t) } : {}),
    })
  }
  if (missing.length === 0) return again!
  again?.file.close()
  missing.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0))
  const names = missing.slice(0, NAMED).map((m) => m.model)
  const more = missing.length > NAMED ? ` and ${missing.length - NAMED} more` : ''
  const one = missing.length === 1
  const why = missing.every((m) => m.unavailable)
    ? (lazy ? `${one ? 'is' : 'are'} not in the local store and no zoo remote gave ${one ? 'it' : 'them'} (${missing[0]!.reason})` : `${one ? 'is' : 'are'} not in the local store (this clone has not fetched ${one ? 'it' : 'them'})`)
    : `could not be read (${missing.find((m) => !m.unavailable)!.reason})`
  const fix = `\`git zoo fetch ${names.join(' ')}${more ? ' ...' : ''}\``
  throw new ZooError(`the history of ${missing.length} model${one ? '' : 's'} is not here: ${one ? 'its checkpoint node' : 'their checkpoint nodes'} ${why}: `
    + `${names.join(', ')}${more}; a query on history needs them: ${lazy ? 'run it again once the zoo remote is reachable, or fetch those models with ' : 'fetch those models with '}${fix}`,
  'E_HISTORY_UNAVAILABLE', { models: missing.map((m) => m.model) })
}
