/**
 * `git zoo remote migrate <name>`: turn a layout-1 zoo remote (one file per object under
 * objects/<xx>/<cid>) into layout 2 (packs only), spec/remotes.md "Layout versions".
 *
 * 1. Under the remote's gc lock (no push or gc runs meanwhile, ./remote-lock.ts), every loose
 *    object no pack lists is read (verified against its CID) and written into packs; the packs and
 *    their indexes are published (flush).
 * 2. `zoo-remote.json` records layout 2: from here on readers look only in packs.
 * 3. Loose objects that appeared meanwhile (an older git-zoo pushing) are packed too, then every
 *    loose object is removed: each one is in a pack by then, so any interruption leaves a readable
 *    remote, and running the command again finishes the job.
 */
import type { Repo } from '../repo.js'
import { ZooError } from '../errors.js'
import { redactUrl } from './layout.js'
import { LAYOUT_PACKS, WritablePackedStore } from './packed.js'
import { lockRemoteForGc } from './remote-lock.js'
import { openZooRemote, pickZooRemote } from './sync.js'

export interface MigrateSummary {
  remote: string
  url: string
  layout_before: number
  layout: number
  objects_packed: number
  bytes_packed: number
  loose_removed: number
}

export async function migrateRemote(repo: Repo, name: string,
  opts: { crashPoint?: (name: string) => void | Promise<void>; onProgress?: (done: number) => void } = {}): Promise<MigrateSummary> {
  const zoo = await pickZooRemote(repo, { name })
  const store = await openZooRemote(repo, zoo, { read: true })
  try {
    if (!(store instanceof WritablePackedStore)) {
      throw new ZooError(`the zoo remote ${zoo.name} (${redactUrl(zoo.url)}) is read-only over HTTP, so it cannot be migrated from here; `
        + `migrate the path or s3 remote the web server serves: \`git config zoo.remote.${zoo.name}.url <path or s3 URL>\``, 'E_READ_ONLY',
      { remote: zoo.name, url: redactUrl(zoo.url) })
    }
    const s: MigrateSummary = { remote: zoo.name, url: redactUrl(zoo.url), layout_before: await store.layout(), layout: LAYOUT_PACKS, objects_packed: 0, bytes_packed: 0, loose_removed: 0 }
    // a push lock younger than a week stops the migration (as it stops a remote gc)
    const lock = await lockRemoteForGc(store, repo.host, 7 * 24 * 3600 * 1000)
    try {
      const pack = async (): Promise<void> => {
        for await (const cid of store.backing.list()) {
          if (await store.indexed(cid)) continue
          const bytes = await store.backing.get(cid) // verified against the CID
          if (await store.putVerified(cid, bytes)) { s.objects_packed++; s.bytes_packed += bytes.length; opts.onProgress?.(s.objects_packed) }
        }
        await store.flush()
      }
      await pack()
      if (s.layout_before !== LAYOUT_PACKS) await store.writeLayout(LAYOUT_PACKS)
      await opts.crashPoint?.('remote-migrate-after-layout')
      await pack()
      const loose: string[] = []
      for await (const e of store.listAged()) loose.push(e.key)
      for (let i = 0; i < loose.length; i += 1000) await store.deleteEntries(loose.slice(i, i + 1000))
      s.loose_removed = loose.length
      await store.publishList()
    } finally { await lock.release() }
    return s
  } finally {
    await store.close()
  }
}
