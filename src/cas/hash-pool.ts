/**
 * Hashing off the main thread. Chunk digests (sha2-256 or BLAKE3, each chunk with its CID's hash:
 * src/cas/cid.ts) are computed by a pool of worker threads (both cores work while the main thread
 * reads and chunks), or on the calling thread by a pool of none (chunkThreads: native BLAKE3); a
 * whole-file sha256 runs in its own worker that receives the file's bytes in order. Buffers are transferred, not copied, both ways.
 */
import { Worker } from 'node:worker_threads'
import { createHash, type Hash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { WorkerCalls } from './worker-calls.js'
import { blake3Backend, blake3Ranges, blake3WorkerPrelude } from './blake3.js'
import { BLAKE3, SHA2_256, digestWith } from './cid.js'

/**
 * Which hash each range of a hashRanges call gets: one multihash code (SHA2_256 or BLAKE3) for all,
 * or one per range (get and verify of a zoo that switched its chunk hash read both kinds in a slab).
 */
export type RangeHashes = number | ArrayLike<number>

/**
 * Inputs smaller than this are hashed on the calling thread (add: a file; get and verify: a model's
 * bytes): a worker thread and its slabs cost more to start than they save. Kept here, a leaf module,
 * so get and verify do not load the add pipeline (formats, chunkers) to learn it.
 */
export const WORKER_THRESHOLD = 16 * 1024 * 1024
/** Slabs of MAX_OBJECT_SIZE bytes that get and verify read packs into (4 x 16 MiB). */
export const READ_SLABS = 4

// CommonJS source for the workers, evaluated in place so no file path has to be resolved; the
// prelude defines blake3Ranges(src, offs, lens, out) with this thread's implementation
// (src/cas/blake3.ts). Chunk hashes: 0x12 sha2-256, 0x1e BLAKE3 (src/cas/cid.ts). Made when the
// first worker starts: a command that hashes nothing in workers never loads the BLAKE3 addon for it.
let workerSource: string | undefined
const source = (): string => workerSource ??= `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
${blake3WorkerPrelude()}
let stream = null
let slabs = []
// digests of the ranges (offs[i], lens[i]) of src into out (32 bytes each); mh: one multihash code
// for all (absent: sha2-256) or one per range
function hashRanges(src, offs, lens, mh, out) {
  const n = offs.length
  if (mh === ${BLAKE3}) { blake3Ranges(src, offs, lens, out); return }
  const per = mh !== undefined && mh !== ${SHA2_256}
  const bo = [], bl = [], at = []
  for (let i = 0; i < n; i++) {
    if (per && mh[i] === ${BLAKE3}) { bo.push(offs[i]); bl.push(lens[i]); at.push(i); continue }
    out.set(createHash('sha256').update(src.subarray(offs[i], offs[i] + lens[i])).digest(), 32 * i)
  }
  if (bo.length === 0) return
  const tmp = new Uint8Array(32 * bo.length)
  blake3Ranges(src, bo, bl, tmp)
  for (let k = 0; k < at.length; k++) out.set(tmp.subarray(32 * k, 32 * k + 32), 32 * at[k])
}
parentPort.on('message', (m) => {
  if (m.op === 'slabs') {
    slabs = m.slabs.map((b) => new Uint8Array(b))
    parentPort.postMessage({ id: m.id })
  } else if (m.op === 'chunks') {
    // digests of many ranges of one slab, in one message each way
    const out = new Uint8Array(32 * m.offs.length)
    hashRanges(slabs[m.slab], m.offs, m.lens, m.mh, out)
    parentPort.postMessage({ id: m.id, digest: out.buffer }, [out.buffer])
  } else if (m.op === 'slab-update') {
    if (!stream) stream = createHash('sha256')
    for (let i = 0; i < m.offs.length; i++) stream.update(slabs[m.slab].subarray(m.offs[i], m.offs[i] + m.lens[i]))
    parentPort.postMessage({ id: m.id })
  } else if (m.op === 'hash') {
    const out = new Uint8Array(32)
    hashRanges(new Uint8Array(m.buf, m.off, m.len), [0], [m.len], m.mh, out)
    parentPort.postMessage({ id: m.id, digest: out.buffer }, [out.buffer])
  } else if (m.op === 'update') {
    if (!stream) stream = createHash('sha256')
    stream.update(new Uint8Array(m.buf, m.off, m.len))
    parentPort.postMessage({ id: m.id })
  } else if (m.op === 'digest') {
    const hex = (stream ?? createHash('sha256')).digest('hex')
    stream = null
    parentPort.postMessage({ id: m.id, hex })
  } else if (m.op === 'reset') {
    // kept for the next command of a long-lived process (keepWorkers): nothing of this one stays
    stream = null
    slabs = []
    parentPort.postMessage({ id: m.id })
  }
})
`

interface Reply { id: number; digest?: ArrayBuffer; buf?: ArrayBuffer; hex?: string }

type HashWorker = WorkerCalls<Reply>
const newWorker = (): HashWorker => new WorkerCalls<Reply>(new Worker(source(), { eval: true }), 'a hashing worker thread')

/**
 * Idle workers kept for the next pool of this process, at most `keep` of them (keepWorkers): the
 * resident server (src/cli/serve.ts) runs one command after another, and a worker costs 50-100 ms
 * of CPU to boot. A command-line process keeps none. Pools of one command at a time take them.
 */
const parked: HashWorker[] = []
let keep = 0
const hashWorker = (): HashWorker => {
  for (let w = parked.pop(); w; w = parked.pop()) if (!w.dead) return w
  return newWorker()
}

/**
 * Keep up to `n` idle hashing workers between pools (0: none, every pool's close() stops its own),
 * and start `warm` of them now, so even the first pool finds them booted.
 */
export function keepWorkers(n: number, warm = 0): void {
  keep = n
  while (parked.length > n) void parked.pop()!.terminate()
  while (parked.length < Math.min(n, warm)) parked.push(newWorker())
}

/**
 * Shared slabs of rings whose pool closed with every slab released, kept (keepSlabs) for the
 * next ring of the same size: the memory of a closed ring is freed only when the garbage collector of
 * every thread that saw it runs, which an idle process (and a parked worker) may not do for long, so a
 * long-lived process that allocated new slabs for every command grew by them (~100 MiB per get and
 * verify of a large model). Slabs of a pool that stopped midway (a read may still land in one) are
 * never reused, and that pool's workers are not parked either (they would keep its slabs alive).
 */
const spareSlabs: SharedArrayBuffer[] = []
/** At most this many bytes of spare slabs (keepSlabs; 0: none kept, every ring allocates its own). */
let maxSpareBytes = 0
const spareBytes = (): number => spareSlabs.reduce((a, b) => a + b.byteLength, 0)

/**
 * Keep up to `bytes` of the slabs of cleanly closed rings for the next rings of this process (see
 * spareSlabs); the resident server keeps a get's or verify's ring (4 x 16 MiB and a page) and an
 * add's (6 x 8 MiB): 120 MiB.
 */
export function keepSlabs(bytes: number): void {
  maxSpareBytes = bytes
  while (spareSlabs.length && spareBytes() > bytes) spareSlabs.pop()
}

/** A pool's worker, done: reset and parked for the next pool when one is wanted (and `reuse`), else stopped. */
async function release(w: HashWorker, reuse: boolean): Promise<unknown> {
  // a worker with calls still out (a command that stopped midway) or a dead one is never reused
  if (reuse && parked.length < keep && !w.dead && w.load === 0) {
    try {
      await w.call({ op: 'reset' })
      if (parked.length < keep) { parked.push(w); return }
    } catch { /* dead: stopped below */ }
  }
  return w.terminate()
}

/**
 * Bytes a worker can read: views into a SharedArrayBuffer are passed as they are; anything else
 * is copied once into a fresh buffer that is transferred (not cloned) to the worker.
 */
function shared(bytes: Uint8Array): [{ buf: ArrayBufferLike; off: number; len: number }, ArrayBuffer[]] {
  if (bytes.buffer instanceof SharedArrayBuffer) return [{ buf: bytes.buffer, off: bytes.byteOffset, len: bytes.byteLength }, []]
  const buf = new ArrayBuffer(bytes.byteLength)
  new Uint8Array(buf).set(bytes)
  return [{ buf, off: 0, len: bytes.byteLength }, [buf]]
}

export interface StreamHasher {
  /**
   * Add bytes. The promise settles when the bytes have been hashed; callers keep only a few
   * updates outstanding, so a slower hasher applies back-pressure instead of queueing copies.
   */
  update(bytes: Uint8Array): Promise<void>
  /** Hex sha256 of everything passed to update. */
  digest(): Promise<string>
}

/**
 * The chunk-hashing worker threads a data path wants for chunks named by `chunkHash`: none for
 * BLAKE3 with the native addon, one per core otherwise (one fewer with `callerHashes`: get and
 * verify hash on the calling thread too, `inline` rings). The addon hashes a GiB in ~0.13 CPU
 * seconds, ~1 ms per 8 MiB slab on the calling thread, while each worker costs 50-100 ms of CPU to
 * boot (node's internals compiled again) and a message each way per slab: on two cores, add of a
 * 1 GiB checkpoint spent more CPU booting two workers than they spent hashing. sha2-256 (and BLAKE3
 * in JS) keep the workers: there the chunk digests are most of the work. The one place add, get and
 * verify decide it.
 */
export function chunkThreads(chunkHash: 'sha2-256' | 'blake3', opts: { callerHashes?: boolean } = {}): number {
  if (chunkHash === 'blake3' && blake3Backend() === 'native') return 0
  return Math.max(1, availableParallelism() - (opts.callerHashes ? 1 : 0))
}

export class HashPool {
  private readonly workers: HashWorker[]
  private streamWorker: HashWorker | null = null

  /**
   * `threads` chunk-hashing workers (default: one per core). With 0, chunk digests (hash(), a
   * ring's hashRanges) are computed on the calling thread; the whole-stream sha256 keeps its worker.
   */
  constructor(threads = Math.max(1, availableParallelism())) {
    this.workers = Array.from({ length: threads }, () => hashWorker())
  }

  /**
   * The digest of `bytes` with the multihash `mh` (SHA2_256 or BLAKE3), computed by the least busy
   * worker. The caller must not change the bytes until the promise settles (views into shared
   * memory are read in place).
   */
  async hash(bytes: Uint8Array, mh = SHA2_256): Promise<Uint8Array> {
    if (this.workers.length === 0) return digestWith(mh, bytes)
    let w = this.workers[0]!
    for (const x of this.workers) if (x.load < w.load) w = x
    const [msg, transfer] = shared(bytes)
    const r = await w.call({ op: 'hash', ...msg, mh }, transfer)
    return new Uint8Array(r.digest!)
  }

  /** A whole-stream digest computed in a worker of its own; bytes must not change after update(). */
  streamHasher(): StreamHasher {
    const w = this.streamWorker ??= hashWorker()
    return {
      update: async (bytes) => { const [msg, transfer] = shared(bytes); await w.call({ op: 'update', ...msg }, transfer) },
      digest: async () => (await w.call({ op: 'digest' }, [])).hex!,
    }
  }

  async close(): Promise<void> {
    // every slab back: nothing reads into them any more, and they may serve the next ring of this process
    const clean = this.ring === null || this.ring.idle()
    if (clean && this.ring) for (const b of this.ring.bufs) if (spareBytes() + b.byteLength <= maxSpareBytes) spareSlabs.push(b)
    this.ring = null
    await Promise.all([...this.workers, ...(this.streamWorker ? [this.streamWorker] : [])].map((w) => release(w, clean)))
  }

  /**
   * A ring of `count` shared buffers of `size` bytes each that every worker of this pool can read in
   * place: the data paths (add, get, verify) read file or pack bytes into a slab, have the workers
   * hash ranges of it, write from it, then reuse it. No byte is copied to reach a worker.
   */
  async slabs(count: number, size: number, opts: { stream?: boolean; inline?: boolean } = {}): Promise<SlabRing> {
    // one ring per pool, shape and options (`inline`, `stream`: a ring built for verify must not serve
    // get), reused by every file of a command (files are processed one at a time)
    const r = this.ring
    // a pool without chunk workers hashes every range on the calling thread
    const inline = (opts.inline ?? false) || this.workers.length === 0, stream = opts.stream !== false
    if (r && r.slabs.length === count && r.slabs[0]!.length === size && r.inline === inline && this.ringStream === stream) return r
    const bufs = Array.from({ length: count }, () => spareShared(size) ?? alignedShared(size))
    // not awaited: a worker takes its messages in order, so the slabs reach it before any hashing
    // that reads them, and the caller reads its first slabs while the threads are still starting
    // (a worker takes ~30-70 ms to boot); a dead worker fails every later call
    const ready = this.workers.map(() => false)
    for (const [i, w] of this.workers.entries()) w.call({ op: 'slabs', slabs: bufs }, []).then(() => { ready[i] = true }, () => {})
    // the whole-stream worker starts now (add and get: it boots while the first slab is read) or,
    // with `stream: false`, on the ring's first update (verify never needs it: one thread fewer to
    // start and to share the cores with)
    let started: HashWorker | null = null
    const streamWorker = (): HashWorker => {
      if (started) return started
      started = this.streamWorker ??= hashWorker()
      // messages are taken in order: the slabs arrive before any update that reads them
      started.call({ op: 'slabs', slabs: bufs }, []).catch(() => {}) // a dead worker fails the update too
      return started
    }
    if (stream) streamWorker()
    this.ring = new SlabRing(bufs, size, this.workers, streamWorker, inline, ready)
    this.ringStream = stream
    return this.ring
  }
  private ring: SlabRing | null = null
  private ringStream = true
}

/**
 * `size` bytes of shared memory whose first byte is page-aligned: a shared WebAssembly.Memory (a plain
 * SharedArrayBuffer's start is not aligned). `get` writes its output with O_DIRECT straight from its
 * slabs (src/zoo/checkout.ts), which needs an aligned address; the memory is no dearer otherwise.
 */
function alignedShared(size: number): SharedArrayBuffer {
  const pages = Math.ceil(size / 65536)
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer
}

/**
 * A spare slab (see spareSlabs) for a slab of `size` bytes, if one is kept: the smallest that holds
 * it and is at most 1 MiB larger (get's slabs are 16 MiB and a page, verify's 16 MiB: either serves both).
 */
function spareShared(size: number): SharedArrayBuffer | undefined {
  let best = -1
  for (const [i, b] of spareSlabs.entries()) {
    if (b.byteLength >= size && b.byteLength <= size + 1024 * 1024 && (best === -1 || b.byteLength < spareSlabs[best]!.byteLength)) best = i
  }
  return best === -1 ? undefined : spareSlabs.splice(best, 1)[0]
}

/** Shared buffers and the hashing of their ranges (see HashPool.slabs). */
export class SlabRing {
  readonly slabs: Uint8Array[]
  private readonly free: number[]
  private readonly waiting: Array<(i: number) => void> = []
  private next = 0

  constructor(readonly bufs: SharedArrayBuffer[], size: number, private readonly workers: HashWorker[], private readonly streamWorker: () => HashWorker,
              readonly inline: boolean, private readonly ready: boolean[]) {
    // a slab is `size` bytes from the start of its buffer (the buffer is rounded up to whole wasm pages)
    this.slabs = bufs.map((b) => new Uint8Array(b, 0, size))
    this.free = this.slabs.map((_, i) => i)
  }

  /** Every slab is released (none is being read into, hashed or written from). */
  idle(): boolean { return this.free.length === this.slabs.length }

  /** A slab nobody uses; waits for a release when all are taken. */
  acquire(): Promise<number> {
    const i = this.free.pop()
    if (i !== undefined) return Promise.resolve(i)
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  release(i: number): void {
    const w = this.waiting.shift()
    if (w) w(i)
    else this.free.push(i)
  }

  /**
   * The digest of each range (offs[k], lens[k]) of slab `slab` with its hash (`mh`: one multihash
   * code for all, sha2-256 unless given, or one per range), as 32 bytes each, in order. The ranges
   * are split between the workers in contiguous runs of about equal bytes; with `inline` (see
   * HashPool.slabs) the calling thread is one of the hashers and hashes its run itself, after the
   * workers have been handed theirs, and while no worker has started yet (a worker takes ~30-70 ms
   * to boot) it hashes every range: hashing runs from the first slab read.
   */
  async hashRanges(slab: number, offs: number[], lens: number[], mh: RangeHashes = SHA2_256): Promise<Uint8Array> {
    const n = offs.length
    const out = new Uint8Array(32 * n)
    if (n === 0) return out
    let total = 0
    for (const l of lens) total += l
    const parts: Array<Promise<void>> = []
    const alone = this.inline && !this.ready.some(Boolean)
    const hashers = alone ? 1 : this.workers.length + (this.inline ? 1 : 0)
    const k = Math.min(hashers, n)
    let from = 0
    let acc = 0
    let mine: [number, number] | null = null
    for (let w = 0; w < k; w++) {
      let to = from
      const share = (total * (w + 1)) / k
      while (to < n && (to === from || acc + lens[to]! / 2 <= share || w === k - 1)) acc += lens[to++]!
      if (to === from) continue
      const h = alone ? this.workers.length : (this.next + w) % hashers
      if (h === this.workers.length) mine = [from, to]
      else {
        const at = from
        const hashes = typeof mh === 'number' ? mh : Array.prototype.slice.call(mh, from, to)
        parts.push(this.workers[h]!.call({ op: 'chunks', slab, offs: offs.slice(from, to), lens: lens.slice(from, to), mh: hashes }, [])
          .then((r) => { out.set(new Uint8Array(r.digest!), 32 * at) }))
      }
      from = to
    }
    this.next++
    if (mine) hashHere(this.slabs[slab]!, offs, lens, mh, mine[0], mine[1], out)
    await Promise.all(parts)
    return out
  }

  /** Feed slab bytes, in order, to the whole-stream digest (one worker; see digest()). */
  async update(slab: number, off: number, len: number): Promise<void> {
    if (len > 0) await this.streamWorker().call({ op: 'slab-update', slab, offs: [off], lens: [len] }, [])
  }

  /** update() for several ranges of one slab, in order, in one message. */
  async updateRanges(slab: number, offs: number[], lens: number[]): Promise<void> {
    if (offs.length > 0) await this.streamWorker().call({ op: 'slab-update', slab, offs, lens }, [])
  }

  /** Hex sha256 of everything passed to update() since the last digest. */
  async digest(): Promise<string> {
    return (await this.streamWorker().call({ op: 'digest' }, [])).hex!
  }
}

/** The worker's hashRanges on the calling thread, for ranges [from, to), into `out` at 32 * i. */
function hashHere(buf: Uint8Array, offs: number[], lens: number[], mh: RangeHashes, from: number, to: number, out: Uint8Array): void {
  if (mh === BLAKE3) { blake3Ranges(buf, offs.slice(from, to), lens.slice(from, to), out, 32 * from); return }
  for (let i = from; i < to; i++) {
    const code = typeof mh === 'number' ? mh : mh[i]!
    out.set(digestWith(code, buf.subarray(offs[i]!, offs[i]! + lens[i]!)), 32 * i)
  }
}

/** The same interface on the calling thread, for small inputs where a worker costs more than it saves. */
export function inlineStreamHasher(): StreamHasher {
  const h: Hash = createHash('sha256')
  return { update: async (b) => { h.update(b) }, digest: async () => h.digest('hex') }
}
