import { readdir, stat, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { historyManifests } from '../../git/manifests.js'
import { reachableObjects } from '../../cas/walk.js'
import { lockForGc } from '../../cas/lock.js'
import { LocalStore } from '../../cas/local.js'
import { CheckError, UsageError } from '../../errors.js'
import { CID } from 'multiformats/cid'
import type { Manifest } from '../../manifest/manifest.js'

export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)?$/.exec(text)
  if (!m) throw new UsageError(`--grace takes a duration such as 0, 90s, 30m, 12h, 2d or 1w, not ${JSON.stringify(text)}`, 'E_USAGE')
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' ?? 's'] ?? 1
  return Number(m[1]) * unit * 1000
}

export const DEFAULT_GRACE = '2d'

export const command: Command = {
  summary: 'remove objects that nothing needs any more',
  help: `usage: git zoo gc [--dry-run] [--grace <duration>] [--json]

Remove objects from the local store that no manifest needs: not one reachable from any ref or
reflog, not one staged in the index, not one in the working tree. Packs written more recently
than the grace period are never touched (an add in progress may still need them), nor is
anything while another git zoo command is writing to the store. Packs holding both live and dead
objects are rewritten with only the live ones.

flags:
  --dry-run            report what would be removed, remove nothing
  --grace <duration>   keep packs younger than this (default ${DEFAULT_GRACE}; 0 for none), e.g. 30m, 12h
  --json               print { removed_objects, removed_bytes, kept_objects, packs_removed, packs_rewritten, dry_run }
`,
  flags: { 'dry-run': { type: 'bool' }, grace: { type: 'string', value: 'duration' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length) throw new UsageError('git zoo gc takes no arguments', 'E_USAGE')
    const graceMs = parseDuration(str(args, 'grace') ?? DEFAULT_GRACE)
    const dry = bool(args, 'dry-run')
    const repo = await Repo.open(io.cwd, io.env)
    const root = await repo.storeRoot()
    const lock = await lockForGc(root)
    const store = await LocalStore.open(root)
    try {
      const manifests: Manifest[] = [
        ...await historyManifests(repo.root, ['--all', '--reflog', '--indexed-objects']),
        ...await repo.allManifests(),
      ]
      let live: Set<string>
      try {
        live = await reachableObjects(manifests, store)
      } catch (err) {
        // without the whole live set nothing can be removed safely
        throw new CheckError(`gc stopped before removing anything: a node a manifest needs cannot be read (${(err as Error).message}); run \`git zoo verify\` and \`git zoo fetch\` first`, 'E_GC_UNSAFE', {}, { cause: err })
      }
      const now = Date.now()
      const byPack = new Map<string, Array<[string, number]>>()
      for (const [cid, e] of store.entries()) {
        const list = byPack.get(e.pack) ?? []
        list.push([cid.toString(), e.length])
        byPack.set(e.pack, list)
      }
      let removedObjects = 0; let removedBytes = 0; let keptObjects = 0; let packsRemoved = 0; let packsRewritten = 0
      const rewriter = dry ? null : await LocalStore.open(root)
      try {
        for (const [pack, objects] of byPack) {
          const st = await stat(store.packPath(pack)).catch(() => null)
          const young = st !== null && now - st.mtimeMs < graceMs
          const dead = objects.filter(([c]) => !live.has(c))
          if (young || dead.length === 0) { keptObjects += objects.length; continue }
          removedObjects += dead.length
          removedBytes += dead.reduce((a, [, n]) => a + n, 0)
          keptObjects += objects.length - dead.length
          if (dry) continue
          if (dead.length < objects.length) {
            // copy the live objects into a new pack first, flushed, then drop the old one
            for (const [c] of objects) {
              if (!live.has(c)) continue
              const cid = CID.parse(c)
              await rewriter!.putVerified(cid, await store.get(cid), { rewrite: true })
            }
            await rewriter!.flush()
            packsRewritten++
          } else packsRemoved++
          await store.removePack(pack)
        }
        // interrupted writes: packs that never got an index, and stray temp files
        const dir = join(root, 'packs')
        for (const name of await readdir(dir)) {
          const full = join(dir, name)
          const isOrphan = name.endsWith('.pack') && !byPack.has(name) && !(await stat(join(dir, name.slice(0, -5) + '.idx')).catch(() => null))
          if (!isOrphan && !name.endsWith('.tmp') && !name.endsWith('.zoo-tmp')) continue
          const st = await stat(full).catch(() => null)
          if (!st || now - st.mtimeMs < graceMs) continue
          if (!dry) await rm(full, { force: true })
        }
      } finally { await rewriter?.close() }
      const summary = { removed_objects: removedObjects, removed_bytes: removedBytes, kept_objects: keptObjects, packs_removed: packsRemoved, packs_rewritten: packsRewritten, dry_run: dry }
      if (bool(args, 'json')) printJson(io, summary)
      else if (dry || io.tty) io.err(`${dry ? 'would remove' : 'removed'} ${removedObjects} objects (${humanBytes(removedBytes)}); kept ${keptObjects}\n`)
      return 0
    } finally {
      await store.close()
      await lock.release()
    }
  },
}
