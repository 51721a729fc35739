/**
 * add's data path for one file: sniff the format -> chunk (tensor boundaries, FastCDC) -> sha256 of
 * each chunk in worker threads -> append to the local store -> file DAG -> root CID; the whole-file
 * sha256 runs alongside. Memory stays bounded by the number of chunks in flight.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, cidOf, sha256 as sha256Of, RAW } from '../cas/cid.js'
import type { LocalStore } from '../cas/local.js'
import { HashPool, inlineStreamHasher, type StreamHasher } from '../cas/hash-pool.js'
import { chunkStream, Chunker } from '../chunk/chunker.js'
import { DEFAULT_CDC } from '../chunk/params.js'
import { buildTree } from '../manifest/node.js'
import { describeFile } from '../formats/index.js'
import { describeOnnx, type OnnxSignature } from '../onnx/inspect.js'
import { FormatError, ZooError } from '../errors.js'

const READ_SIZE = 1024 * 1024
const MAX_INFLIGHT = 8
/** Files smaller than this are hashed on the calling thread. */
export const WORKER_THRESHOLD = 16 * 1024 * 1024

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
  onBytes?: (n: number) => void
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

export async function ingestFile(path: string, store: LocalStore, opts: IngestOptions = {}): Promise<IngestResult> {
  const fd = await open(path, 'r')
  try {
    const { size } = await fd.stat()
    const read = async (offset: number, length: number): Promise<Uint8Array> => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)))
      const { bytesRead } = await fd.read(buf, 0, buf.length, offset)
      return buf.subarray(0, bytesRead)
    }
    const desc = await describeFile(read, size)
    let onnx: OnnxSignature | undefined
    if (desc.format === 'onnx') {
      // ONNX: the signature sealed at add time, and boundaries around every inline raw_data tensor
      const o = await describeOnnx(read, size)
      onnx = o.signature
      if (desc.segments === null) desc.segments = o.segments
      if (o.warning) desc.warning = o.warning
    }
    if (size < WHOLE_FILE) desc.segments = null
    const pool = size >= WORKER_THRESHOLD ? opts.pool ?? null : null
    try {
      const r = await chunkAndStore(fd, size, desc.segments, store, pool, opts, desc.format, desc.warning)
      return onnx ? { ...r, onnx } : r
    } catch (err) {
      // the format's segments did not match the bytes: keep the file exactly, as opaque bytes
      if (!(err instanceof FormatError) || desc.segments === null) throw err
      return await chunkAndStore(fd, size, null, store, pool, opts, desc.format,
        `its ${desc.format} layout did not match its bytes (${err.message}); stored as opaque bytes`)
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
  const size = bytes.length
  const read = async (offset: number, length: number): Promise<Uint8Array> => bytes.subarray(offset, Math.min(size, offset + length))
  const desc = await describeFile(read, size)
  let onnx: OnnxSignature | undefined
  if (desc.format === 'onnx') {
    const o = await describeOnnx(read, size)
    onnx = o.signature
    if (desc.segments === null) desc.segments = o.segments
    if (o.warning) desc.warning = o.warning
  }
  const cut = (segments: number[] | null): Uint8Array[] => { const c = new Chunker(segments); return [...c.push(bytes), ...c.end()] }
  if (size < WHOLE_FILE) desc.segments = null
  let warning = desc.warning
  let pieces: Uint8Array[]
  try { pieces = cut(desc.segments) } catch (err) {
    if (!(err instanceof FormatError) || desc.segments === null) throw err
    warning = `its ${desc.format} layout did not match its bytes (${err.message}); stored as opaque bytes`
    pieces = cut(null)
  }
  opts.signal?.throwIfAborted()
  if (pieces.length === 0) pieces = [new Uint8Array(0)] // the empty file: one zero-length raw chunk
  const chunks: Array<[CID, number]> = []
  let whole: Uint8Array | undefined
  let appended = 0
  for (const piece of pieces) {
    const digest = sha256Of(piece)
    if (pieces.length === 1) whole = digest
    const cid = cidFromDigest(RAW, digest)
    await store.putVerified(cid, piece)
    chunks.push([cid, piece.length])
    if (opts.crashPoint) await opts.crashPoint('after-chunk')
    const half = appended < size / 2
    appended += piece.length
    if (half && appended >= size / 2) await opts.crashPoint?.('add-mid-pack')
  }
  opts.onBytes?.(size)
  const sha256 = Buffer.from(whole ?? sha256Of(bytes)).toString('hex')
  const root = await buildTree(chunks, (cid, b) => store.putVerified(cid, b))
  return { size, sha256, root, format: desc.format, chunks: chunks.length, ...(warning ? { warning } : {}), ...(onnx ? { onnx } : {}) }
}

async function chunkAndStore(fd: FileHandle, size: number, segments: number[] | null, store: LocalStore,
                             pool: HashPool | null, opts: IngestOptions, format: string, warning?: string): Promise<IngestResult> {
  const whole: StreamHasher = pool ? pool.streamHasher() : inlineStreamHasher()
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
  let appended = 0
  const drainOne = async (): Promise<void> => {
    const { cid, bytes } = await inflight.shift()!
    await store.putVerified(cid, bytes)
    chunks.push([cid, bytes.length])
    if (opts.crashPoint) await opts.crashPoint('after-chunk')
    const half = appended < size / 2
    appended += bytes.length
    if (half && appended >= size / 2) await opts.crashPoint?.('add-mid-pack')
  }
  try {
    for await (const chunk of chunkStream(source, segments, DEFAULT_CDC)) {
      opts.signal?.throwIfAborted()
      if (pool && chunk.length >= 64 * 1024) {
        inflight.push(pool.hash(chunk).then((digest) => ({ cid: cidFromDigest(RAW, digest), bytes: chunk })))
      } else {
        inflight.push(Promise.resolve({ cid: cidOf(RAW, chunk), bytes: chunk }))
      }
      inflight[inflight.length - 1]!.catch(() => {}) // surfaced by drainOne in order
      if (inflight.length >= MAX_INFLIGHT) await drainOne()
    }
    while (inflight.length) await drainOne()
  } catch (err) {
    await Promise.allSettled(inflight)
    await whole.digest().catch(() => {})
    throw err
  }
  const sha256 = await whole.digest()
  if (chunks.length === 0) {
    // the empty file: a zero-length raw chunk keeps every file's root a real object
    const empty = new Uint8Array(0)
    const cid = cidOf(RAW, empty)
    await store.putVerified(cid, empty)
    chunks.push([cid, 0])
  }
  const root = await buildTree(chunks, (cid, bytes) => store.putVerified(cid, bytes))
  return { size, sha256, root, format, chunks: chunks.length, ...(warning ? { warning } : {}) }
}
