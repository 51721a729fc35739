/**
 * `git zoo verify --repair`: replace damaged or missing local objects with good copies from the zoo
 * remotes (spec/teams.md, "Repair").
 *
 * 1. verify finds the damaged ("corrupt") and absent ("missing") objects;
 * 2. each is looked up on the zoo remotes in order (--from alone, else the default first, then the
 *    others); a copy is used only after it matched its CID, so a remote holding bad bytes is
 *    reported and nothing bad is stored;
 * 3. the damaged bytes are copied aside to `<store>/bad/<cid>` (like `git lfs fsck` keeps bad
 *    objects in `.git/lfs/bad/`), then the good copies go into a new pack and the old indexes stop
 *    listing the replaced objects (LocalStore.replaceObjects);
 *    A node's good copy is decoded and the objects below it that are absent or damaged here are
 *    repaired with it, children first, so invariant 2 holds throughout;
 * 4. verify runs again until it finds nothing more to try.
 * The result lists what was repaired and what was not; the command exits 0 only when verify finds
 * nothing damaged any more.
 */
import { checkpointLinks } from '../manifest/checkpoints.js'
import { link, mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import type { Repo } from '../repo.js'
import type { Manifest } from '../manifest/manifest.js'
import { fsyncDir, tempName } from '../cas/atomic.js'
import { registerWriter } from '../cas/lock.js'
import type { LocalStore } from '../cas/local.js'
import { RAW } from '../cas/cid.js'
import { decodeNode } from '../manifest/node.js'
import { RemoteObjects, describeFailures, remotesInOrder } from '../remote/objects.js'
import type { ZooRemote } from '../remote/sync.js'
import { storeProblem, verifyModels, type Problem, type VerifyResult } from './verify.js'

export const BAD_DIR = 'bad'

export interface Repaired {
  object: string
  /** What was wrong: "corrupt" or "missing". */
  problem: string
  models: string[]
  from: string
  /** Where that remote is: a path, or a URL without credentials. */
  url: string
  /** Where the damaged bytes were kept, or null (a missing object; a pack that is gone). */
  moved_to: string | null
}

export interface Unrepaired { object: string | null; problem: string; models: string[]; reason: string }

export interface RepairResult extends VerifyResult {
  repaired: Repaired[]
  unrepaired: Unrepaired[]
}

export interface RepairOptions {
  /** Take copies only from this zoo remote. */
  from?: string
  /** A lazy clone: absent objects are not yet fetched, not damage (left alone). */
  lazy?: boolean
  onRepaired?: (r: Repaired) => void
  /** Named crash points for reliability tests (spec/reliability.md): `repair-after-pack`. */
  crashPoint?: (name: string) => void
  /** Aborted (Ctrl-C, SIGTERM): each round's check stops at its next object; no round starts after it. */
  signal?: AbortSignal
}

/** Rounds of verify + repair (a bound: one round normally repairs everything it can). */
const MAX_ROUNDS = 32

const REPAIRABLE = new Set(['corrupt', 'missing'])

/** Write the damaged bytes to `<store>/bad/<cid>` (a new name if that exists); returns the path. */
async function keepAside(storeRoot: string, cid: string, bytes: Uint8Array): Promise<string> {
  const dir = join(storeRoot, BAD_DIR)
  await mkdir(dir, { recursive: true })
  for (let n = 0; ; n++) {
    const target = join(dir, n === 0 ? cid : `${cid}.${n}`)
    const tmp = tempName(target)
    const fd = await open(tmp, 'wx', 0o444)
    try { await fd.writeFile(bytes); await fd.sync() } finally { await fd.close() }
    // link refuses an existing name, so an earlier repair's bytes are never overwritten
    try {
      try {
        await link(tmp, target)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err
        // no hard links on this filesystem: rename, after checking the name is free
        if (await stat(target).then(() => true, () => false)) throw Object.assign(new Error('exists'), { code: 'EEXIST' })
        await rename(tmp, target)
      }
      await fsyncDir(dir)
      return target
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      await rm(tmp, { force: true })
    }
  }
}

/** Whether an object reads back whole from the local store. */
async function localState(store: LocalStore, cid: CID): Promise<'ok' | 'missing' | 'corrupt'> {
  try {
    await store.get(cid)
    return 'ok'
  } catch (err) {
    const problem = storeProblem(err)
    if (!problem) throw err
    return problem
  }
}

async function damagedBytes(store: LocalStore, cid: CID): Promise<Uint8Array | null> {
  try { return await store.readUnverified(cid) } catch { return null } // the pack is gone, or the object is
}

export async function repairModels(repo: Repo, manifests: Manifest[], opts: RepairOptions = {}): Promise<RepairResult> {
  const storeRoot = await repo.storeRoot()
  const writer = await registerWriter(repo.host, storeRoot, 'git zoo verify --repair')
  // a --from naming no zoo remote is a usage error before anything is read
  let order: Promise<ZooRemote[]> | undefined = opts.from !== undefined ? remotesInOrder(repo, opts.from) : undefined
  order?.catch(() => {})
  const remotes = new RemoteObjects(repo, () => (order ??= remotesInOrder(repo, opts.from)))
  const repaired: Repaired[] = []
  const failed = new Map<string, string>() // object -> why no good copy was found
  const attempted = new Set<string>()
  let last: VerifyResult
  try {
    await order
    for (let round = 0; ; round++) {
      opts.signal?.throwIfAborted()
      const store = await repo.openStore()
      try {
        last = await verifyModels(manifests, store, { lazy: opts.lazy, ...(opts.signal ? { signal: opts.signal } : {}) })
        const todo = new Map<string, Problem[]>()
        for (const p of last.problems) {
          if (p.object === null || !REPAIRABLE.has(p.problem) || attempted.has(p.object)) continue
          todo.set(p.object, [...(todo.get(p.object) ?? []), p])
        }
        if (todo.size === 0 || round === MAX_ROUNDS) break
        const copies: Array<{ cid: CID; bytes: Uint8Array }> = []
        const pending: Repaired[] = []
        /**
         * Queue a good copy of `cid`, after the damaged or absent objects below it when it is a node
         * (children first: invariant 2 holds at every moment, even across pack boundaries). Returns
         * whether the copy and its whole subtree were queued.
         */
        const queue = async (cid: CID, problem: string, models: string[]): Promise<boolean> => {
          const object = cid.toString()
          attempted.add(object)
          const found = await remotes.find(cid)
          if ('failures' in found) { failed.set(object, `no zoo remote has a good copy: ${describeFailures(found.failures)}`); return false }
          let complete = true
          if (cid.code !== RAW) {
            let links: Array<[CID, number]> = []
            try { links = decodeNode(found.bytes, cid).links } catch {
              // a checkpoint node (manifest format 2) links its entries' roots and its pages;
              // else it is malformed everywhere and verify reports it
              links = (checkpointLinks(found.bytes) ?? []).map((c) => [c, 0])
            }
            for (const [child] of links) {
              if (attempted.has(child.toString())) continue
              const state = await localState(store, child)
              if (state === 'ok') continue
              if (!(await queue(child, state, models))) complete = false
            }
          }
          // an absent node is stored only with everything below it; a damaged one is replaced anyway
          if (!complete && problem === 'missing') {
            failed.set(object, 'objects below it could not be repaired, so it was not stored (invariant 2)')
            return false
          }
          const bad = problem === 'corrupt' ? await damagedBytes(store, cid) : null
          const movedTo = bad ? await keepAside(storeRoot, object, bad) : null
          copies.push({ cid, bytes: found.bytes })
          pending.push({ object, problem, models, from: found.remote.name, url: found.location, moved_to: movedTo })
          return complete
        }
        for (const [object, problems] of todo) {
          if (attempted.has(object)) continue // queued below another node this round
          await queue(CID.parse(object), problems[0]!.problem, [...new Set(problems.map((p) => p.model))])
        }
        await store.replaceObjects(copies, { afterPack: () => opts.crashPoint?.('repair-after-pack') })
        for (const r of pending) { repaired.push(r); opts.onRepaired?.(r) }
      } finally {
        await store.close()
      }
    }
  } finally {
    await remotes.close()
    await writer.release()
  }
  // what verify still finds, grouped by object, with why it was not repaired
  const left = new Map<string, Unrepaired>()
  for (const p of last!.problems) {
    const k = p.object === null ? `${p.model}:${p.problem}` : `${p.object}:${p.problem}`
    const u = left.get(k)
    if (u) { if (!u.models.includes(p.model)) u.models.push(p.model); continue }
    const reason = p.object !== null && failed.has(p.object) ? failed.get(p.object)!
      : REPAIRABLE.has(p.problem) ? 'still damaged after a repair (the repair was interrupted or the disk is failing); run it again'
        : 'a good copy cannot help: the object matches its CID or the manifest itself is wrong (restore it from git)'
    left.set(k, { object: p.object, problem: p.problem, models: [p.model], reason })
  }
  return { ...last!, repaired, unrepaired: [...left.values()] }
}
