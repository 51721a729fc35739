/**
 * Random access to a file as the store holds it (its chunk DAG), without writing it out: `read`
 * fetches only the chunks a byte range needs, each verified against its CID by the store. Used by
 * `diff` and `soup` to read tensor headers and tensors straight from the zoo.
 */
import { CID } from 'multiformats/cid'
import type { Store } from '../cas/store.js'
import type { FileEntry } from '../manifest/manifest.js'
import { fileChunks } from '../manifest/node.js'
import { CorruptObjectError } from '../errors.js'

export interface ChunkRef { cid: string; offset: number; size: number }

/** Bytes of recently read chunks a StoredFile keeps (beyond its last 4 chunks). */
const CACHE_BYTES = 4 << 20

export class StoredFile {
  private cache = new Map<string, Uint8Array>()
  private cached = 0

  private constructor(readonly entry: FileEntry, private readonly store: Store,
                      readonly chunks: ChunkRef[], readonly nodes: string[]) {}

  static async open(store: Store, entry: FileEntry): Promise<StoredFile> {
    const chunks: ChunkRef[] = []
    const nodes: string[] = []
    let offset = 0
    for await (const [cid, size] of fileChunks(CID.parse(entry.root), store, (n) => nodes.push(n.toString()))) {
      const s = size < 0 ? entry.size : size // a one-chunk file's root is the chunk itself
      chunks.push({ cid: cid.toString(), offset, size: s })
      offset += s
    }
    if (offset !== entry.size) {
      throw new CorruptObjectError(`file ${entry.path}: its chunks hold ${offset} bytes, the manifest says ${entry.size}`, { path: entry.path, object: entry.root })
    }
    return new StoredFile(entry, store, chunks, nodes)
  }

  get size(): number { return this.entry.size }

  /** Index of the chunk holding byte `offset` (binary search). */
  private chunkAt(offset: number): number {
    let lo = 0
    let hi = this.chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.chunks[mid]!.offset <= offset) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  private async chunk(i: number): Promise<Uint8Array> {
    const c = this.chunks[i]!
    const hit = this.cache.get(c.cid)
    if (hit) return hit
    const bytes = await this.store.get(CID.parse(c.cid))
    if (bytes.length !== c.size) throw new CorruptObjectError(`chunk ${c.cid} of ${this.entry.path} is ${bytes.length} bytes, its node says ${c.size}`, { object: c.cid })
    // keep the most recent chunks up to CACHE_BYTES (at least 4): reading a zip's directory, its
    // local headers and then its entries goes over a small file several times
    this.cache.set(c.cid, bytes)
    this.cached += bytes.length
    while (this.cache.size > 4 && this.cached > CACHE_BYTES) {
      const [k, v] = this.cache.entries().next().value!
      this.cache.delete(k)
      this.cached -= v.length
    }
    return bytes
  }

  /** Bytes [offset, offset + length); throws RangeError beyond the file. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) throw new RangeError(`read [${offset}, +${length}) is outside ${this.entry.path} (${this.size} bytes)`)
    if (length === 0) return new Uint8Array(0)
    let i = this.chunkAt(offset)
    const first = await this.chunk(i)
    const at = offset - this.chunks[i]!.offset
    if (at + length <= first.length) return first.subarray(at, at + length)
    const out = new Uint8Array(length)
    let done = 0
    let cur = first.subarray(at)
    for (;;) {
      const n = Math.min(cur.length, length - done)
      out.set(cur.subarray(0, n), done)
      done += n
      if (done === length) return out
      cur = await this.chunk(++i)
    }
  }

  /**
   * The CIDs of the chunks covering exactly [start, end), or undefined when a boundary falls inside
   * a chunk. Two byte ranges with equal lists hold equal bytes (no read needed).
   */
  chunksCovering(start: number, end: number): string[] | undefined {
    if (start === end) return []
    const i = this.chunkAt(start)
    if (this.chunks[i]!.offset !== start) return undefined
    const out: string[] = []
    for (let j = i; j < this.chunks.length; j++) {
      const c = this.chunks[j]!
      out.push(c.cid)
      if (c.offset + c.size === end) return out
      if (c.offset + c.size > end) return undefined
    }
    return undefined
  }
}
