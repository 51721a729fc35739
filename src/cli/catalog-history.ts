/**
 * A query on history (`best.`, `max.`, `min.`, `<metric>@<epoch>`, `epochs`) in a zoo whose catalog
 * has rows without it: their checkpoint nodes were not in the local store when it was built (a lazy
 * clone, spec/catalog.md "History in a lazy clone"). The nodes are read through the zoo's reader
 * (fetched from the zoo remotes in a lazy clone, verified against their CIDs, kept in memory), those
 * rows are read again with them, and the catalog is opened anew; in rounds of HISTORY_ROUND
 * versions, so the blocks held stay bounded. Each round's rows are kept by the catalog's cache file,
 * which the next round starts from: when it cannot be written (or is rebuilt meanwhile), earlier
 * rounds' rows would be back without history, and the query fails (E_HISTORY_UNAVAILABLE) rather
 * than answer without them. Loaded only then (ls and find load no store code otherwise).
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

/** `round`: versions per round (HISTORY_ROUND; tests take smaller rounds). */
export async function withHistory(opened: OpenedCatalog, io: Io, round = HISTORY_ROUND): Promise<OpenedCatalog> {
  const c = opened.file
  const version = c.f64('version')!
  const versions = c.unfetched().map((r) => ({ name: c.str('name', r)!, version: version[r]! }))
  c.close()
  const repo = await Repo.open(io.cwd, io)
  const lazy = await isLazy(repo)
  // the fetch would use the query server's own credentials: a process of the asker's answers it
  if (lazy) io.declineServed?.('a lazy clone\'s history is fetched from its zoo remotes')
  if (io.tty && lazy) io.err(`git zoo: fetching the checkpoint nodes of ${versions.length} model${versions.length === 1 ? '' : 's'} for their history (once; the catalog keeps it)\n`)
  const missing: NodeMiss[] = []
  let again: OpenedCatalog | undefined
  let lost: string[] = []
  try {
    for (let at = 0; at < versions.length; at += round) {
      const these = versions.slice(at, at + round)
      const got = await checkpointNodes(repo, these, io.signal ? { signal: io.signal } : {})
      missing.push(...got.missing)
      // what did arrive is read into the catalog even when some did not
      again?.file.close()
      again = undefined
      again = await openCatalog({
        cwd: io.cwd, env: io.env, history: true, fetched: { blocks: got.blocks, paths: new Set(these.map((v) => manifestPathOf(v.name, v.version))) },
        ...(io.tty ? { progress: (t: string) => io.err(t) } : {}),
      })
    }
    // every version whose node arrived must have its history now, whichever round read it
    const gone = new Set(missing.map((m) => m.model))
    const asked = new Set(versions.map((x) => `${x.name}@v${x.version}`))
    const f = again?.file
    const v = f?.f64('version')
    if (f && v) lost = f.unfetched().map((r) => `${f.str('name', r)!}@v${v[r]!}`).filter((m) => asked.has(m) && !gone.has(m))
  } catch (err) {
    again?.file.close()
    throw err
  }
  if (missing.length === 0 && lost.length === 0) return again!
  again?.file.close()
  if (lost.length > 0) {
    lost.sort()
    const more = lost.length > NAMED ? ` and ${lost.length - NAMED} more` : ''
    throw new ZooError(`the history of ${lost.length} model${lost.length === 1 ? '' : 's'} was fetched but could not be kept in the catalog `
      + `(its cache file ${again!.path} could not be written, or was rebuilt by another command meanwhile): ${lost.slice(0, NAMED).join(', ')}${more}; `
      + 'make that file writable and run the query again', 'E_HISTORY_UNAVAILABLE', { models: lost })
  }
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
