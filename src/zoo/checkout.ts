/**
 * Writing a model version's files out of the store: every chunk verified against its CID, every
 * file against its size and sha256, renamed into place only when the whole model is good.
 */
import { open, rename, rm, lstat, mkdir } from 'node:fs/promises'
import { resolve, join, dirname, sep } from 'node:path'
import { CID } from 'multiformats/cid'
import { fileChunksFast, firstChunkHash } from './file-node.js'
import { checkRelPath } from '../manifest/names.js'
import { checkSeal, type Manifest } from '../manifest/manifest.js'
import { CheckError, CorruptObjectError, FormatError, diskFull } from '../errors.js'
import type { Store } from '../cas/store.js'
import { tempName, ownedTempName, fsyncDir, removeStaleTemps, EarlyWriteback } from '../cas/atomic.js'
import { AppendWriter, DIRECT_ALIGN } from '../cas/append-write.js'
import { LocalStore } from '../cas/local.js'
import { verifyObject } from '../remote/verify.js'
import { HashPool, chunkThreads, inlineStreamHasher, WORKER_THRESHOLD, READ_SLABS, type SlabRing } from '../cas/hash-pool.js'
import { readBatches, type ReadItem, type SlabBatch } from '../cas/pack-read.js'
import { BLAKE3, digestMatches } from '../cas/cid.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
import type { ChunkHash } from '../cas/cid.js'

/** Refuse when any existing component from `base` (exclusive) down to `target` is a symlink. */
async function checkNoSymlinks(base: string, target: string): Promise<void> {
  const rel = target.slice(base.length + 1).split(sep)
  let cur = base
  for (const seg of rel) {
    cur = join(cur, seg)
    let st
    try { st = await lstat(cur) } catch { return } // nothing there yet: nothing to follow
    if (st.isSymbolicLink()) throw new CheckError(`refusing to write through the symbolic link ${cur}; remove it or choose another --out folder`, 'E_SYMLINK', { path: cur })
  }
}

export interface WrittenFile { path: string; size: number; sha256: string; target: string }

/**
 * Write all of a manifest's files under `outDir`: each is streamed into a temp file beside its
 * target with every chunk verified, its size and sha256 checked, fsynced; only when every file is
 * complete are they renamed into place, so a damaged model writes nothing.
 */
export interface WriteOptions {
  onBytes?: (n: number) => void
  /** Write only the files whose manifest path passes. */
  only?: (path: string) => boolean
  /**
   * Checked between chunks: an abort removes this call's temp files and throws the signal's reason.
   * Once every file is complete the renames run to the end (a model is never half written).
   */
  signal?: AbortSignal
  /** `get-file-written` after each file's temp file is complete and synced, before any rename. */
  crashPoint?: (name: string) => void | Promise<void>
  /**
   * The writing process: temp files are then named with its pid, and those an earlier process that
   * is gone (`kill -9`) left beside a target are removed before the target is written.
   */
  owner?: { pid: number; alive(pid: number): boolean }
  /**
   * Write files of WORKER_THRESHOLD bytes and more with O_DIRECT where the filesystem takes it
   * (src/cas/append-write.ts): no copy into the page cache (the largest cost of a get, measured in
   * spec/performance.md), but the file is then not in the page cache for the reader that comes next.
   * `get` sets it; callers that read the files right away (evaluation) leave it off.
   */
  directIO?: boolean
  /**
   * Workers started ahead for this model (startWriteWorkers), used when they fit its chunks; closed
   * by writeModelFiles whatever happens (the caller closes them only if it never calls it).
   */
  workers?: EarlyWorkers | null
}

/** Hashing workers and their slab ring, started before the store is opened (startWriteWorkers). */
export interface EarlyWorkers { pool: HashPool; threads: number }

/**
 * The workers a get of `m` from the local store needs (the whole-file sha256's, with its slab ring,
 * and the chunk hashers chunkThreads gives), started now: a worker takes 30-70 ms to boot, which
 * then overlaps opening the store and reading the file nodes instead of holding up the first slabs.
 * `chunkHash` (the zoo's) guesses the model's chunk hash; writeModelFiles checks the guess against
 * the model's first chunk and starts the right ones when it was wrong. null under WORKER_THRESHOLD.
 */
export function startWriteWorkers(m: Manifest, chunkHash: ChunkHash): EarlyWorkers | null {
  if (m.files.reduce((a, f) => a + f.size, 0) < WORKER_THRESHOLD) return null
  const threads = chunkThreads(chunkHash, { callerHashes: true })
  const pool = new HashPool(threads)
  // the same ring writeModelFiles asks for (a pool keeps one ring per shape)
  pool.slabs(READ_SLABS, MAX_OBJECT_SIZE + DIRECT_ALIGN, { inline: true }).catch(() => { /* the first read that needs it says why */ })
  return { pool, threads }
}

export async function writeModelFiles(m: Manifest, store: Store, outDir: string, opts: WriteOptions = {}): Promise<WrittenFile[]> {
  const { onBytes, only, signal } = opts
  const seal = checkSeal(m)
  if (!seal.ok) throw new CheckError(`model ${m.name}@v${m.version}: its manifest does not match its seal (recorded ${m.seal}, content gives ${seal.expected}); it was modified after sealing: run \`git zoo verify\``, 'E_SEAL_MISMATCH')
  const base = resolve(outDir)
  const total = m.files.reduce((a, f) => a + f.size, 0)
  const local = store instanceof LocalStore
  // the local store: chunks are read straight from the packs into shared, page-aligned slabs with room
  // for the file's block alignment (src/cas/pack-read.ts); the whole-file sha256 has a worker of its
  // own (the longest sequential work of a get: 0.55 CPU s per GiB); the chunk digests are computed by
  // this thread alone when the chunks are BLAKE3 (0.13 CPU s per GiB: a worker thread would cost more
  // to boot, ~0.05-0.1 CPU s, than it takes off, on cores the sha256 needs), else by one worker fewer
  // than there are cores plus this thread
  let pool: HashPool | null = null
  let ring: SlabRing | null = null
  // workers started ahead (startWriteWorkers) serve when they fit the model's chunks; others are
  // closed and the right ones started
  let early = opts.workers ?? null
  try {
    const threads = total < WORKER_THRESHOLD ? undefined : local ? await chunkWorkers(m, store, only) : undefined
    if (early && local && threads === early.threads) {
      pool = early.pool
      early = null
      ring = await pool.slabs(READ_SLABS, MAX_OBJECT_SIZE + DIRECT_ALIGN, { inline: true }) // the ring started ahead
    } else {
      const unfit = early
      early = null
      await unfit?.pool.close()
      if (total >= WORKER_THRESHOLD) {
        pool = new HashPool(threads)
        ring = local ? await pool.slabs(READ_SLABS, MAX_OBJECT_SIZE + DIRECT_ALIGN, { inline: true }) : null
      }
    }
  } catch (err) {
    await Promise.all([pool?.close(), early?.pool.close()])
    throw err
  }
  const temps: Array<{ tmp: string; target: string }> = []
  const createdDirs: string[] = []
  let renamed = 0
  let closing: Promise<void> | undefined
  const out: WrittenFile[] = []
  try {
    for (const f of m.files) {
      if (only && !only(f.path)) continue
      checkRelPath(f.path)
      const target = resolve(base, f.path)
      if (!target.startsWith(base + sep)) throw new FormatError(`file path ${f.path} escapes the output folder`, 'E_BAD_PATH')
      await checkNoSymlinks(dirname(base), target)
      const made = await mkdir(dirname(target), { recursive: true })
      if (made) createdDirs.push(made)
      await checkNoSymlinks(dirname(base), target)
      // a temp file of this target left by an earlier get that was killed (kill -9, power cut)
      if (opts.owner) await removeStaleTemps(target, opts.owner.alive)
      signal?.throwIfAborted()
      const tmp = opts.owner ? ownedTempName(target, opts.owner.pid) : tempName(target)
      if (ring && store instanceof LocalStore) {
        const writer = await AppendWriter.create(tmp, dirname(tmp), { direct: opts.directIO ?? false, mode: 0o644 })
        temps.push({ tmp, target })
        // written through the page cache: the disk starts writing the file while it is written (src/cas/atomic.ts)
        const writeback = writer.direct ? null : new EarlyWriteback(writer.fd)
        let written: { size: number; sha256: string }
        try {
          written = await writeFromPacks(f, store, ring, writer, writeback, onBytes, signal)
          await writer.finish()
          await writeback?.settle()
          await writer.fd.sync()
        } finally { await writeback?.settle().catch(() => {}); await writer.abandon(); await writer.fd.close() }
        if (written.size !== f.size || written.sha256 !== f.sha256) {
          throw new CorruptObjectError(`model ${m.name}@v${m.version} file ${f.path}: the chunks give ${written.size} bytes with sha256 ${written.sha256}, the manifest says ${f.size} bytes with ${f.sha256}`, { model: m.name, path: f.path, object: f.root })
        }
        out.push({ path: f.path, size: written.size, sha256: written.sha256, target })
        await opts.crashPoint?.('get-file-written')
        continue
      }
      const fd = await open(tmp, 'wx', 0o644)
      temps.push({ tmp, target })
      // the disk starts writing the file while it is written (src/cas/atomic.ts)
      const writeback = new EarlyWriteback(fd)
      const whole = pool ? pool.streamHasher() : inlineStreamHasher()
      let size = 0
      try {
        // chunks are read and verified a bounded number ahead of the writer, in worker threads
        const ahead: Array<Promise<Uint8Array>> = []
        const hashing: Array<Promise<void>> = []
        const writeNext = async (): Promise<void> => {
          const bytes = await ahead.shift()!
          hashing.push(whole.update(bytes))
          if (hashing.length > 8) await hashing.shift()
          size += bytes.length
          let done = 0
          while (done < bytes.length) done += (await fd.write(bytes, done, bytes.length - done, null)).bytesWritten
          writeback.wrote(bytes.length)
          onBytes?.(bytes.length)
        }
        try {
          for await (const [cid] of fileChunksFast(CID.parse(f.root), store)) {
            signal?.throwIfAborted()
            const next = readVerified(store, cid, pool)
            next.catch(() => {}) // handled when its turn comes; never an unhandled rejection meanwhile
            ahead.push(next)
            if (ahead.length >= 16) await writeNext()
            if (size > f.size) break
          }
          while (ahead.length && size <= f.size) await writeNext()
          await Promise.all(hashing)
        } finally { await Promise.allSettled([...ahead, ...hashing]) }
        await writeback.settle()
        await fd.sync()
      } finally { await writeback.settle().catch(() => {}); await fd.close() }
      const sha256 = await whole.digest()
      if (size !== f.size || sha256 !== f.sha256) {
        throw new CorruptObjectError(`model ${m.name}@v${m.version} file ${f.path}: the chunks give ${size} bytes with sha256 ${sha256}, the manifest says ${f.size} bytes with ${f.sha256}`, { model: m.name, path: f.path, object: f.root })
      }
      out.push({ path: f.path, size, sha256, target })
      await opts.crashPoint?.('get-file-written')
    }
    signal?.throwIfAborted()
    // every byte is hashed: the workers stop while the files are renamed into place (not waited for here)
    closing = pool?.close()
    closing?.catch(() => { /* awaited below */ })
    for (const t of temps) { await checkNoSymlinks(dirname(base), t.target); await rename(t.tmp, t.target); renamed++ }
    // each folder that got a file is fsynced once, all at once: every rename is then durable
    await Promise.all([...new Set(temps.map((t) => dirname(t.target)))].map((d) => fsyncDir(d)))
    temps.length = 0
    createdDirs.length = 0
    return out
  } catch (err) {
    throw diskFull(err, base)
  } finally {
    for (const t of temps) await rm(t.tmp, { force: true })
    // folders this call created stay only if the model was written
    if (renamed === 0) for (const d of createdDirs.reverse()) await rm(d, { recursive: true, force: true })
    await (closing ?? pool?.close())
  }
}

/**
 * One file from the local store: its chunks located in the packs as its tree is walked, read side by
 * side into slabs laid out as the file's blocks are (src/cas/pack-read.ts), fed to the whole-file
 * sha256 as soon as they are read, each checked against its CID, then written straight from the
 * slab (O_DIRECT where the filesystem takes it: no copy into staging nor into the page cache).
 * Reading starts with the first leaf node's chunks; memory does not grow with the file.
 * Returns the size and sha256 written.
 */
async function writeFromPacks(f: { root: string; size: number; path: string }, store: LocalStore, ring: SlabRing, writer: AppendWriter, writeback: EarlyWriteback | null,
                              onBytes: ((n: number) => void) | undefined, signal: AbortSignal | undefined): Promise<{ size: number; sha256: string }> {
  async function* chunks(): AsyncGenerator<ReadItem> {
    let listed = 0
    for await (const [cid] of fileChunksFast(CID.parse(f.root), store)) {
      signal?.throwIfAborted()
      const entry = store.entryOf(cid) ?? await store.locate(cid)
      if (!entry) await store.readUnverified(cid) // throws the store's NotFoundError
      yield { cid, entry: entry! }
      listed += entry!.length
      if (listed > f.size) return // the manifest's size check fails below; read no further
    }
  }
  let pos = 0
  const writeBatch = async (b: SlabBatch): Promise<void> => {
    for (const [k, it] of b.items.entries()) {
      if (!digestMatches(it.item.cid, b.digests.subarray(32 * k, 32 * k + 32))) {
        throw new CorruptObjectError(`object ${it.item.cid} from ${store.location} does not match its CID (${it.len} bytes read)`, { cid: String(it.item.cid), where: store.location })
      }
    }
    await writer.appendAligned(b.buf, b.head, b.bytes)
    pos += b.bytes
    writeback?.wrote(b.bytes)
    onBytes?.(b.bytes)
  }
  try {
    await readBatches(store, ring, chunks(), writeBatch, {
      signal,
      file: { offset: 0, align: DIRECT_ALIGN },
      // the whole-file sha256 is one sequential stream: it starts on a slab as soon as it is read (a
      // failed update stops the reads like a failed write: readBatches records it and throws it)
      onRead: (b) => ring.updateRanges(b.slab, [b.head], [b.bytes]),
    })
  } catch (err) {
    await ring.digest().catch(() => {}) // the whole-file digest starts clean for the next file
    throw err
  }
  return { size: pos, sha256: await ring.digest() }
}


/**
 * Worker threads for get's chunk digests, by the chunk hash of the model's largest file (chunkThreads:
 * none for native BLAKE3, which this thread hashes faster than it reads, else one fewer than there are
 * cores, as this thread hashes too). A model's files are added together, so they share one chunk hash;
 * one that does not is still hashed, with the threads chosen.
 */
async function chunkWorkers(m: Manifest, store: Store, only: ((path: string) => boolean) | undefined): Promise<number> {
  let largest: Manifest['files'][number] | undefined
  for (const f of m.files) if ((!only || only(f.path)) && (!largest || f.size > largest.size)) largest = f
  const blake3 = largest !== undefined && await firstChunkHash(CID.parse(largest.root), store) === BLAKE3
  return chunkThreads(blake3 ? 'blake3' : 'sha2-256', { callerHashes: true })
}

/** An object's bytes, checked against its CID (hashed in the pool when there is one). */
async function readVerified(store: Store, cid: CID, pool: HashPool | null): Promise<Uint8Array> {
  if (!pool || !(store instanceof LocalStore)) return store.get(cid)
  const bytes = await store.readUnverified(cid)
  await verifyObject(cid, bytes, store.location, (b, mh) => pool.hash(b, mh))
  return bytes
}
