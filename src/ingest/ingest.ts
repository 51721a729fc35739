/**
 * add's data path for one file: sniff the format -> chunk (tensor boundaries; fixed-size chunks
 * inside tensors, FastCDC elsewhere) -> digest of each chunk (the zoo's chunk hash, BLAKE3 or
 * sha2-256: spec/format.md) -> append to the local store -> file DAG -> root CID; the whole-file
 * sha256 runs alongside.
 *
 * Large files (WORKER_THRESHOLD and up) go through slabs: the file is read in SLAB_SIZE pieces into
 * a ring of shared buffers; the chunks of a slab are hashed in place (by worker threads on both
 * cores, or by this thread for BLAKE3 with the native addon: chunkThreads in src/cas/hash-pool.ts)
 * and a worker thread hashes the whole file in order; the new chunks of a slab go to the store's pack in one
 * vectored write; then the slab is reused. Nothing is copied to reach a worker and memory is the
 * ring (SLABS x SLAB_SIZE) whatever the file's size. Any failure (a write error such as ENOSPC, a
 * worker that died, an abort) stops the reads at once and is thrown once every slab in flight has
 * settled: no thread is left waiting.
 *
 * Image slabs: where the chunks ahead are cut without reading bytes (tensor data in fixed-size
 * chunks, segments kept whole: ChunkPlanner.cutPlanned) and nothing is carried from the slab before,
 * the slab is laid out as the pack's bytes: one vectored read puts each chunk at the place its data
 * takes in the pack, a RECORD_GAP-byte gap before each for its record header, the first header at
 * `head`, the pack position the slab is predicted to land at modulo DIRECT_ALIGN (chained from the
 * previous image slab). The store writes the headers into the gaps and the slab with one direct
 * write straight from it (LocalStore.putImage): no byte of the file is copied in user space. The
 * whole-file sha256 reads the data ranges only, so the headers can be written while it runs. Bytes
 * without structure (FastCDC) keep the copying path; its windows stop where planned chunks start,
 * so an image slab starts with nothing carried and the cuts are the same either way.
 */
import { open, readdir, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { CID } from 'multiformats/cid'
import { chunkCid, chunkHashCode, cidFromDigest, sha256 as sha256Of, RAW, type ChunkHash } from '../cas/cid.js'
import { RECORD_GAP, type LocalStore } from '../cas/local.js'
import { DIRECT_ALIGN } from '../cas/append-write.js'
import { remainingIov } from '../cas/atomic.js'
import { HashPool, inlineStreamHasher, WORKER_THRESHOLD, type StreamHasher } from '../cas/hash-pool.js'
import { chunkStream, Chunker } from '../chunk/chunker.js'
import { ChunkPlanner } from '../chunk/plan.js'
import { DEFAULT_CDC, FIXED_CHUNK } from '../chunk/params.js'
import { buildTree, encodeNode, MAX_LINKS } from '../manifest/node.js'
import { describeFile, type FileDescription } from '../formats/index.js'
import { describeOnnx, externalDataSegments, ONNX_SEGMENT_MIN, type OnnxSignature } from '../onnx/inspect.js'
import { FormatError, ZooError } from '../errors.js'

const READ_SIZE = 1024 * 1024
const MAX_INFLIGHT = 8
/** Bytes read into one slab (one read, one vectored pack write); at least 2x the largest chunk. */
export const SLAB_SIZE = 8 * 1024 * 1024
/** Slabs in the ring: how far reading runs ahead of hashing and writing. */
export const SLABS = 6
/** Files smaller than this are hashed on the calling thread (src/cas/hash-pool.ts). */
export { WORKER_THRESHOLD }

export interface IngestResult {
  size: number
  sha256: string
  root: CID
  format: string
  chunks: number
  /** Set when a known format was malformed and the file was stored as opaque bytes. */
  warning?: string
  /** For ONNX files: opset, inputs, outputs, parameter count (src/onnx/inspect.ts). */
  onnx?: OnnxSignature
}

export interface IngestOptions {
  pool?: HashPool | null
  /** How the zoo names its raw chunks (`.zoo/config.json` "chunk_hash"; Repo.chunkHash()); sha2-256 when absent. */
  chunkHash?: ChunkHash
  onBytes?: (n: number) => void
  /** ingestBytes: the file's path, to find the ONNX models beside it that place tensors in it (external data). */
  source?: string
  /** Checked between reads: an abort throws its reason; chunks already put stay in the store. */
  signal?: AbortSignal
  /**
   * Named crash and pause points (spec/reliability.md): `after-chunk` after each chunk is put in the
   * store; `add-mid-pack` once half of the file's bytes are appended to the store's open pack,
   * before any index names them.
   */
  crashPoint?: (name: string) => void | Promise<void>
}

async function* readAll(fd: FileHandle, size: number, onBytes?: (n: number) => void, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  let pos = 0
  while (pos < size) {
    signal?.throwIfAborted()
    const n = Math.min(READ_SIZE, size - pos)
    const buf = Buffer.allocUnsafe(n)
    const { bytesRead } = await fd.read(buf, 0, buf.length, pos)
    if (bytesRead === 0) break
    pos += bytesRead
    onBytes?.(bytesRead)
    yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
  }
  // a file that grew while it was read is caught by the size check in ingestFile
  const probe = Buffer.allocUnsafe(1)
  if ((await fd.read(probe, 0, 1, pos)).bytesRead !== 0) {
    throw new ZooError('the file grew while it was being read; stop the writer and run the command again', 'E_FILE_CHANGED')
  }
  if (pos !== size) throw new ZooError(`the file shrank while it was being read (${pos} of ${size} bytes); stop the writer and run the command again`, 'E_FILE_CHANGED')
}

/**
 * The crash points of a file's chunks as they are stored (see IngestOptions.crashPoint):
 * `after-chunk` after each, `add-mid-pack` when the chunks stored reach half of the file's bytes.
 */
function chunkPoints(size: number, crashPoint: IngestOptions['crashPoint']): (bytes: number) => Promise<void> {
  let appended = 0
  return async (bytes) => {
    if (!crashPoint) return
    await crashPoint('after-chunk')
    const before = appended
    appended += bytes
    if (before < size / 2 && appended >= size / 2) await crashPoint('add-mid-pack')
  }
}

/**
 * What ingest needs to know of a file before cutting it: its format and tensor segments
 * (describeFile), for ONNX its sealed signature and the tensors inside it, for an ONNX model's
 * external data file (`source` names where it lies) the tensors the models beside it place there.
 * A file smaller than one chunk keeps no segments: it is stored whole.
 */
async function describeForIngest(read: (offset: number, length: number) => Promise<Uint8Array>, size: number, source: string | undefined): Promise<{ desc: FileDescription; onnx?: OnnxSignature }> {
  const desc = await describeFile(read, size)
  let onnx: OnnxSignature | undefined
  if (desc.format === 'onnx') {
    // ONNX: the signature sealed at add time, and boundaries around every tensor it holds
    const o = await describeOnnx(read, size)
    onnx = o.signature
    if (desc.segments === null) { desc.segments = o.segments; if (o.fixed) desc.fixed = o.fixed }
    if (o.warning) desc.warning = o.warning
  } else if (source !== undefined && desc.segments === null && desc.format === 'unknown' && !desc.warning && size >= WHOLE_FILE && size > ONNX_SEGMENT_MIN) {
    const ext = await externalDataSegments(resolve(source), size, listOnnx, openReader)
    if (ext) { desc.segments = ext.segments; desc.fixed = ext.fixed }
  }
  if (size < WHOLE_FILE) desc.segments = null
  return onnx ? { desc, onnx } : { desc }
}

/** The `.onnx` files of a folder (none when it cannot be read). */
async function listOnnx(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.onnx')).map((e) => join(dir, e.name)).sort()
  } catch { return [] }
}

async function openReader(path: string): Promise<{ read: (o: number, l: number) => Promise<Uint8Array>; size: number; close: () => Promise<void> }> {
  const fd = await open(path, 'r')
  const { size } = await fd.stat()
  return {
    size,
    read: async (offset, length) => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)))
      const { bytesRead } = await fd.read(buf, 0, buf.length, offset)
      return buf.subarray(0, bytesRead)
    },
    close: () => fd.close(),
  }
}

export async function ingestFile(path: string, store: LocalStore, opts: IngestOptions = {}): Promise<IngestResult> {
  const fd = await open(path, 'r')
  try {
    const { size } = await fd.stat()
    const read = async (offset: number, length: number): Promise<Uint8Array> => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)))
      const { bytesRead } = await fd.read(buf, 0, buf.length, offset)
      return buf.subarray(0, bytesRead)
    }
    const { desc, onnx } = await describeForIngest(read, size, path)
    const pool = size >= WORKER_THRESHOLD ? opts.pool ?? null : null
    const store1 = (segments: number[] | null, fixed: boolean[] | null, warning?: string): Promise<IngestResult> =>
      pool ? slabsAndStore(fd, size, segments, fixed, store, pool, opts, desc.format, warning)
        : chunkAndStore(fd, size, segments, fixed, store, opts, desc.format, warning)
    try {
      const r = await store1(desc.segments, desc.segments ? desc.fixed ?? null : null, desc.warning)
      return onnx ? { ...r, onnx } : r
    } catch (err) {
      // the format's segments did not match the bytes: keep the file exactly, as opaque bytes
      if (!(err instanceof FormatError) || err.code !== 'E_SEGMENTS' || desc.segments === null) throw err
      return await store1(null, null, `its ${desc.format} layout did not match its bytes (${err.message}); stored as opaque bytes`)
    }
  } finally {
    await fd.close()
  }
}

/**
 * A file smaller than the chunker's minimum is stored as one chunk, whatever its format says about
 * tensors (spec/chunking.md, "Small files"): its tensors would be objects of a few bytes each, whose
 * headers and index entries outweigh them, and a population of small models would cost one object
 * per tensor per checkpoint.
 */
export const WHOLE_FILE = DEFAULT_CDC.min

/** Files up to this size may be ingested from memory (ingestBytes): one read, no streaming. */
export const SMALL_FILE = 1024 * 1024

/**
 * ingestFile for a small file already read into memory (an import's checkpoints: a few KiB each).
 * Same result and crash points; the chunker runs synchronously over the one buffer and a file
 * that is a single chunk is hashed once (its sha256 is its chunk's digest).
 */
export async function ingestBytes(bytes: Uint8Array, store: LocalStore, opts: IngestOptions = {}): Promise<IngestResult> {
  return storePrepared(await prepareBytes(bytes, opts.source, opts.signal, opts.chunkHash), store, opts)
}

/**
 * ingestBytes' work before the store, on any thread (an import prepares files in worker threads,
 * src/importer/prepare.ts): the description, the chunks with their CIDs, the file's tree nodes and
 * sha256. CIDs travel as bytes so the result can be posted between threads.
 */
export interface PreparedBytes {
  size: number
  sha256: string
  format: string
  warning?: string
  onnx?: OnnxSignature
  /** The file's root CID, as bytes. */
  root: Uint8Array
  /** Raw chunks in file order, then tree nodes bottom up, as storePrepared puts them. */
  blocks: Array<{ cid: Uint8Array; bytes: Uint8Array; chunk: boolean }>
}

export async function prepareBytes(bytes: Uint8Array, source?: string, signal?: AbortSignal, chunkHash: ChunkHash = 'sha2-256'): Promise<PreparedBytes> {
  const size = bytes.length
  const read = async (offset: number, length: number): Promise<Uint8Array> => bytes.subarray(offset, Math.min(size, offset + length))
  const { desc, onnx } = await describeForIngest(read, size, source)
  const cut = (segments: number[] | null): Uint8Array[] => {
    const c = new Chunker(segments, DEFAULT_CDC, segments ? desc.fixed ?? null : null, FIXED_CHUNK)
    return [...c.push(bytes), ...c.end()]
  }
  let warning = desc.warning
  let pieces: Uint8Array[]
  try { pieces = cut(desc.segments) } catch (err) {
    if (!(err instanceof FormatError) || desc.segments === null) throw err
    warning = `its ${desc.format} layout did not match its bytes (${err.message}); stored as opaque bytes`
    pieces = cut(null)
  }
  signal?.throwIfAborted()
  if (pieces.length === 0) pieces = [new Uint8Array(0)] // the empty file: one zero-length raw chunk
  const chunks: Array<[CID, number]> = []
  const blocks: PreparedBytes['blocks'] = []
  // a file that is one chunk named by sha2-256 is hashed once: its sha256 is its chunk's digest
  let whole: Uint8Array | undefined
  for (const piece of pieces) {
    const cid = chunkCid(chunkHash, piece)
    if (pieces.length === 1 && chunkHash === 'sha2-256') whole = cid.multihash.digest
    blocks.push({ cid: cid.bytes, bytes: piece, chunk: true })
    chunks.push([cid, piece.length])
  }
  const sha256 = Buffer.from(whole ?? sha256Of(bytes)).toString('hex')
  const root = await buildTree(chunks, async (cid, b) => { blocks.push({ cid: cid.bytes, bytes: b, chunk: false }) })
  return { size, sha256, format: desc.format, root: root.bytes, blocks, ...(warning ? { warning } : {}), ...(onnx ? { onnx } : {}) }
}

/** Put a prepared file's chunks and nodes in the store (ingestBytes' crash points fire here). */
export async function storePrepared(p: PreparedBytes, store: LocalStore, opts: IngestOptions = {}): Promise<IngestResult> {
  opts.signal?.throwIfAborted()
  const stored = chunkPoints(p.size, opts.crashPoint)
  let chunks = 0
  for (const b of p.blocks) {
    if (!b.chunk) continue
    await store.putVerified(CID.decode(b.cid), b.bytes)
    chunks++
    await stored(b.bytes.length)
  }
  opts.onBytes?.(p.size)
  for (const b of p.blocks) if (!b.chunk) await store.putVerified(CID.decode(b.cid), b.bytes)
  return { size: p.size, sha256: p.sha256, root: CID.decode(p.root), format: p.format, chunks, ...(p.warning ? { warning: p.warning } : {}), ...(p.onnx ? { onnx: p.onnx } : {}) }
}

/** Small files: chunks hashed on this thread as they are cut. */
async function chunkAndStore(fd: FileHandle, size: number, segments: number[] | null, fixed: boolean[] | null, store: LocalStore,
                             opts: IngestOptions, format: string, warning?: string): Promise<IngestResult> {
  const whole: StreamHasher = inlineStreamHasher()
  const source = (async function* () {
    const hashing: Array<Promise<void>> = []
    for await (const buf of readAll(fd, size, opts.onBytes, opts.signal)) {
      hashing.push(whole.update(buf))
      if (hashing.length > 2) await hashing.shift()
      yield buf
    }
    await Promise.all(hashing)
  })()
  const chunks: Array<[CID, number]> = []
  const inflight: Array<Promise<{ cid: CID, bytes: Uint8Array }>> = []
  const stored = chunkPoints(size, opts.crashPoint)
  const drainOne = async (): Promise<void> => {
    const { cid, bytes } = await inflight.shift()!
    await store.putVerified(cid, bytes)
    chunks.push([cid, bytes.length])
    await stored(bytes.length)
  }
  try {
    for await (const chunk of chunkStream(source, segments, DEFAULT_CDC, fixed, FIXED_CHUNK)) {
      opts.signal?.throwIfAborted()
      inflight.push(Promise.resolve({ cid: chunkCid(opts.chunkHash ?? 'sha2-256', chunk), bytes: chunk }))
      inflight[inflight.length - 1]!.catch(() => {}) // surfaced by drainOne in order
      if (inflight.length >= MAX_INFLIGHT) await drainOne()
    }
    while (inflight.length) await drainOne()
  } catch (err) {
    await Promise.allSettled(inflight)
    await whole.digest().catch(() => {})
    throw err
  }
  return finish(store, size, await whole.digest(), chunks, format, opts.chunkHash ?? 'sha2-256', warning)
}

/**
 * buildTree (src/manifest/node.ts) fed one chunk at a time: each leaf node is written as soon as its
 * MAX_LINKS chunks are known, so memory holds one leaf's links and one link per leaf, not one per
 * chunk (a 16 GiB file has 65,536 chunks). Gives exactly buildTree's tree and root.
 */
export class TreeBuilder {
  #pending: Array<[CID, number]> = []
  #leaves: Array<[CID, number]> = []
  constructor(private readonly put: (cid: CID, bytes: Uint8Array) => Promise<unknown>) {}

  /** Add the next chunk; a full leaf is written when the chunk after it arrives. */
  async add(cid: CID, size: number): Promise<void> {
    if (this.#pending.length === MAX_LINKS) await this.#flushLeaf()
    this.#pending.push([cid, size])
  }

  /** The root: the only chunk itself, or the top node; at least one chunk must have been added. */
  async finish(): Promise<CID> {
    if (this.#leaves.length === 0 && this.#pending.length === 1) return this.#pending[0]![0]
    await this.#flushLeaf()
    let level = this.#leaves
    while (level.length > 1) {
      const next: Array<[CID, number]> = []
      for (let i = 0; i < level.length; i += MAX_LINKS) {
        const links = level.slice(i, i + MAX_LINKS)
        const size = links.reduce((a, [, n]) => a + n, 0)
        const { cid, bytes } = encodeNode({ size, leaf: false, links })
        await this.put(cid, bytes)
        next.push([cid, size])
      }
      level = next
    }
    return level[0]![0]
  }

  async #flushLeaf(): Promise<void> {
    const links = this.#pending
    this.#pending = []
    const size = links.reduce((a, [, n]) => a + n, 0)
    const { cid, bytes } = encodeNode({ size, leaf: true, links })
    await this.put(cid, bytes)
    this.#leaves.push([cid, size])
  }
}

/** The file's DAG over its chunks (the empty file gets one empty chunk) and the result. */
async function finish(store: LocalStore, size: number, sha256: string, chunks: Array<[CID, number]>,
                      format: string, chunkHash: ChunkHash, warning?: string): Promise<IngestResult> {
  if (chunks.length === 0) {
    // the empty file: a zero-length raw chunk keeps every file's root a real object
    const empty = new Uint8Array(0)
    const cid = chunkCid(chunkHash, empty)
    await store.putVerified(cid, empty)
    chunks.push([cid, 0])
  }
  const root = await buildTree(chunks, (cid, bytes) => store.putVerified(cid, bytes))
  return { size, sha256, root, format, chunks: chunks.length, ...(warning ? { warning } : {}) }
}

interface SlabWork { slab: number; done: Promise<Array<[CID, number]>> }

/** Large files: the slab pipeline described at the top of this file. */
async function slabsAndStore(fd: FileHandle, size: number, segments: number[] | null, fixed: boolean[] | null, store: LocalStore,
                             pool: HashPool, opts: IngestOptions, format: string, warning?: string): Promise<IngestResult> {
  const plan = new ChunkPlanner(size, segments, fixed, DEFAULT_CDC, FIXED_CHUNK) // E_SEGMENTS before any byte is read
  const chunkHash = opts.chunkHash ?? 'sha2-256'
  const mh = chunkHashCode(chunkHash)
  const ring = await pool.slabs(SLABS, SLAB_SIZE)
  // the file's tree is built as chunks settle, in order: memory does not grow with the file
  const tree = new TreeBuilder((cid, bytes) => store.putVerified(cid, bytes))
  let chunkCount = 0
  const inflight: SlabWork[] = []
  const stored = chunkPoints(size, opts.crashPoint)
  let failed = null as { err: unknown } | null
  // the whole-file digest sees each byte once, in file order (carried bytes are not fed again); its
  // worker takes messages in the order they are posted
  const wholeDone: Array<Promise<void>> = []
  // slabs settle in file order; the crash and pause points of a slab's chunks fire then (each chunk
  // is appended by that time), without holding back the slabs behind it
  const settle = async (w: SlabWork): Promise<void> => {
    let got: Array<[CID, number]>
    try {
      got = await w.done
    } finally { ring.release(w.slab) }
    for (const [cid, n] of got) await tree.add(cid, n)
    chunkCount += got.length
    if (opts.crashPoint) for (const [, n] of got) await stored(n)
  }
  let pos = 0 // next file byte to read
  let prev: { slab: number; start: number; length: number } | null = null // window of the previous slab
  // where the next image slab's first record header goes, modulo DIRECT_ALIGN: the pack position
  // it is predicted to land at, chained from the previous image (the store pads when it does not)
  let head = 0
  // slabs are handed to the store in file order, whichever is hashed first: an image then lands
  // where the one before it ends, as `head` predicted (no padding record), and the store's writes
  // of one slab run while the next is hashed (each call returns once its write is issued)
  let turn: Promise<void> = Promise.resolve()
  /**
   * The slab's turn, taken when it is read: `run(put)` calls `put` once every slab before it has
   * called its own (or given its turn up), `release()` gives the turn up (a slab that failed first;
   * called by every slab once it is done, so no later slab waits for ever).
   */
  const takeTurn = (): { run: <T>(put: () => Promise<T>) => Promise<T>; release: () => void } => {
    const before = turn
    let release!: () => void
    turn = new Promise<void>((resolve) => { release = resolve })
    return { run: async (put) => { await before; try { return put() } finally { release() } }, release }
  }
  const grew = async (): Promise<void> => {
    if (pos === size && (await fd.read(Buffer.allocUnsafe(1), 0, 1, pos)).bytesRead !== 0) {
      throw new ZooError('the file grew while it was being read; stop the writer and run the command again', 'E_FILE_CHANGED')
    }
  }
  /** A slab's `got` bytes were read: the file checked for growth, the bytes counted and fed to the whole-file sha256 (`feed`). */
  const wasRead = async (got: number, feed: () => Promise<void>): Promise<{ hashed: Promise<void> }> => {
    await grew()
    opts.onBytes?.(got)
    const hashed = feed()
    hashed.catch(() => {}) // awaited by the slab's work (storeSlab)
    wholeDone.push(hashed)
    if (wholeDone.length > SLABS) wholeDone.shift()
    return { hashed } // (not the promise itself: an async function would wait for it)
  }
  /**
   * A slab's work, in flight: its chunks' digests, then (in the slab's turn) `put` of their CIDs in
   * the store, then the slab is given back once the whole-file digest has read it (`hashed`).
   */
  const storeSlab = (slab: number, offs: number[], lens: number[], hashed: Promise<void>, put: (cids: CID[]) => Promise<unknown>): void => {
    const turn = takeTurn()
    const done = (async (): Promise<Array<[CID, number]>> => {
      try {
        const digests = await ring.hashRanges(slab, offs, lens, mh)
        const cids = offs.map((_, i) => cidFromDigest(RAW, digests.subarray(32 * i, 32 * i + 32), mh))
        await turn.run(() => put(cids))
        await hashed // the slab is reused only once the whole-file digest has read it
        return cids.map((cid, i) => [cid, lens[i]!])
      } finally { turn.release() }
    })()
    done.catch((err) => { failed ??= { err } })
    inflight.push({ slab, done })
  }
  const shrank = (at: number): ZooError =>
    new ZooError(`the file shrank while it was being read (${at} of ${size} bytes); stop the writer and run the command again`, 'E_FILE_CHANGED')
  try {
    while (!plan.done) {
      opts.signal?.throwIfAborted()
      if (failed) throw failed.err
      if (inflight.length >= SLABS - 1) await settle(inflight.shift()!)
      const slab = await ring.acquire()
      const buf = ring.slabs[slab]!
      const ends: number[] = []
      // an image slab: the next chunks are known without their bytes, so they are read with one
      // vectored read straight to where they lie in the pack's records (see the file comment)
      if (pos === plan.next && plan.planned) plan.cutPlanned(SLAB_SIZE - head - DIRECT_ALIGN, RECORD_GAP, ends)
      if (ends.length > 0) {
        const start = pos
        const offs: number[] = []
        const lens: number[] = []
        const parts: Uint8Array[] = []
        let at = start
        let off = head
        for (const end of ends) {
          off += RECORD_GAP
          offs.push(off); lens.push(end - at)
          parts.push(buf.subarray(off, off + end - at))
          off += end - at
          at = end
        }
        let got = 0
        while (got < at - start) {
          const { bytesRead } = await fd.readv(remainingIov(parts, got), start + got)
          if (bytesRead === 0) throw shrank(start + got)
          got += bytesRead
        }
        pos = at
        const { hashed } = await wasRead(got, () => ring.updateRanges(slab, offs, lens))
        const h = head
        storeSlab(slab, offs, lens, hashed, (cids) => store.putImage(buf, h, cids.map((cid, i) => ({ cid, off: offs[i]!, len: lens[i]! }))))
        head = off % DIRECT_ALIGN
        prev = { slab, start: pos, length: 0 }
        continue
      }
      // the uncut tail of the previous slab (less than one chunk) starts this one
      const carry: number = prev ? prev.start + prev.length - plan.next : 0
      if (prev && carry > 0) buf.set(ring.slabs[prev.slab]!.subarray(plan.next - prev.start, prev.length), 0)
      const start = plan.next
      // a window stops where planned chunks start, so they start an image slab with nothing carried
      const stop = plan.plannedFrom() > pos ? plan.plannedFrom() : size
      const want = Math.min(SLAB_SIZE - carry, stop - pos)
      let got = 0
      while (got < want) {
        const { bytesRead } = await fd.read(buf, carry + got, want - got, pos + got)
        if (bytesRead === 0) throw shrank(pos + got)
        got += bytesRead
      }
      pos += got
      const { hashed } = await wasRead(got, () => ring.update(slab, carry, got))
      const length: number = carry + got
      plan.cut(buf.subarray(0, length), start, ends)
      const offs: number[] = []
      const lens: number[] = []
      let at = start
      for (const end of ends) { offs.push(at - start); lens.push(end - at); at = end }
      storeSlab(slab, offs, lens, hashed, (cids) => store.putBatchVerified(cids.map((cid, i) => ({ cid, bytes: buf.subarray(offs[i]!, offs[i]! + lens[i]!) }))))
      prev = { slab, start, length }
    }
    while (inflight.length) await settle(inflight.shift()!)
  } catch (err) {
    await Promise.allSettled(inflight.map((w) => w.done))
    for (const w of inflight) ring.release(w.slab)
    await Promise.allSettled(wholeDone)
    await ring.digest().catch(() => {})
    throw err
  }
  await Promise.all(wholeDone)
  const sha256 = await ring.digest()
  if (chunkCount === 0) return finish(store, size, sha256, [], format, chunkHash, warning) // planned cuts: never for size > 0
  return { size, sha256, root: await tree.finish(), format, chunks: chunkCount, ...(warning ? { warning } : {}) }
}
