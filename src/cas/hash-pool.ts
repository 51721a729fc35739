/**
 * sha256 off the main thread. Chunk digests are computed by a pool of worker threads (both cores
 * work while the main thread reads and chunks); a whole-file digest runs in its own worker that
 * receives the file's bytes in order. Buffers are transferred, not copied, both ways.
 */
import { Worker } from 'node:worker_threads'
import { createHash, type Hash } from 'node:crypto'
import { availableParallelism } from 'node:os'

// CommonJS source for the workers, evaluated in place so no file path has to be resolved.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
let stream = null
parentPort.on('message', (m) => {
  if (m.op === 'hash') {
    const d = createHash('sha256').update(new Uint8Array(m.buf, m.off, m.len)).digest()
    parentPort.postMessage({ id: m.id, digest: d.buffer.slice(d.byteOffset, d.byteOffset + 32) })
  } else if (m.op === 'update') {
    if (!stream) stream = createHash('sha256')
    stream.update(new Uint8Array(m.buf, m.off, m.len))
    parentPort.postMessage({ id: m.id })
  } else if (m.op === 'digest') {
    const hex = (stream ?? createHash('sha256')).digest('hex')
    stream = null
    parentPort.postMessage({ id: m.id, hex })
  }
})
`

type Pending = (msg: { digest?: ArrayBuffer; buf?: ArrayBuffer; hex?: string }) => void

class HashWorker {
  readonly worker: Worker
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  load = 0
  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true })
    this.worker.unref()
    this.worker.on('message', (m: { id: number }) => {
      const cb = this.pending.get(m.id)
      this.pending.delete(m.id)
      this.load--
      cb?.(m as never)
    })
    this.worker.on('error', (err) => {
      for (const cb of this.pending.values()) cb({})
      this.pending.clear()
      throw err
    })
  }
  call(msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<{ digest?: ArrayBuffer; buf?: ArrayBuffer; hex?: string }> {
    const id = this.nextId++
    this.load++
    return new Promise((resolve) => {
      this.pending.set(id, resolve)
      this.worker.postMessage({ ...msg, id }, transfer)
    })
  }
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

export class HashPool {
  private readonly workers: HashWorker[]
  private streamWorker: HashWorker | null = null

  constructor(threads = Math.max(1, availableParallelism())) {
    this.workers = Array.from({ length: threads }, () => new HashWorker())
  }

  /**
   * sha256 of `bytes`, computed by the least busy worker. The caller must not change the bytes
   * until the promise settles (views into shared memory are read in place).
   */
  async hash(bytes: Uint8Array): Promise<Uint8Array> {
    let w = this.workers[0]!
    for (const x of this.workers) if (x.load < w.load) w = x
    const [msg, transfer] = shared(bytes)
    const r = await w.call({ op: 'hash', ...msg }, transfer)
    return new Uint8Array(r.digest!)
  }

  /** A whole-stream digest computed in a worker of its own; bytes must not change after update(). */
  streamHasher(): StreamHasher {
    const w = this.streamWorker ??= new HashWorker()
    return {
      update: async (bytes) => { const [msg, transfer] = shared(bytes); await w.call({ op: 'update', ...msg }, transfer) },
      digest: async () => (await w.call({ op: 'digest' }, [])).hex!,
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers, ...(this.streamWorker ? [this.streamWorker] : [])].map((w) => w.worker.terminate()))
  }
}

/** The same interface on the calling thread, for small inputs where a worker costs more than it saves. */
export function inlineStreamHasher(): StreamHasher {
  const h: Hash = createHash('sha256')
  return { update: async (b) => { h.update(b) }, digest: async () => h.digest('hex') }
}
