/**
 * Appending to a new file from its first byte to its last, with direct I/O where the filesystem takes
 * it: the store's pack files (src/cas/local.ts) and the files `get` writes (src/zoo/checkout.ts).
 *
 * Direct mode (O_DIRECT): append() copies the records into page-aligned staging buffers and writes
 * them from there in STAGE-sized blocks at block-aligned offsets, bypassing the page cache;
 * appendAligned() writes the whole blocks of a caller's page-aligned buffer straight from it (get's
 * slabs, add's slabs laid out as pack records), only the file's last partial block (under DIRECT_ALIGN
 * bytes) going through staging; the two mix. The kernel's
 * copy of every byte into fresh page-cache pages (and the dirty pages the writeback then has to
 * chase) was the largest cost of `add` (spec/performance.md): 1.4-2.4 s of system time per GiB for
 * buffered writes plus fsync here, 0.16-0.19 s with O_DIRECT (`dd bs=8M`). append()'s copy into
 * staging is a memcpy on this thread. Staging memory comes from a WebAssembly.Memory, the one allocation
 * JavaScript has whose start is page-aligned (a Buffer's or SharedArrayBuffer's is not: O_DIRECT
 * refuses them with EINVAL). The last, partial block is written padded with zeros and the file is
 * truncated to its exact length by finish(); until then a pack may be followed by up to one block
 * of zeros, which readers never reach (indexes give offsets; scanPack stops at the first bad record).
 *
 * Buffered mode: the caller's buffers are gathered and written with one vectored write per
 * BUFFERED_WRITE bytes, zero-copy. It is used where O_DIRECT is refused (open or a first aligned
 * write fails with EINVAL: a filesystem without direct I/O) and when the caller asks for it
 * (`GIT_ZOO_DIRECT_IO=0`).
 *
 * Every operation is serialised, in call order. A failed write (ENOSPC, EIO) is kept and thrown by
 * every later call.
 */
import { open, rm, type FileHandle } from 'node:fs/promises'
import { constants } from 'node:fs'
import { writeAllAt } from './atomic.js'

/** Alignment of direct writes: offsets, lengths and buffer addresses (covers 512 and 4096-byte blocks). */
export const DIRECT_ALIGN = 4096
/** Bytes per direct write (one staging buffer). */
export const STAGE = 4 * 1024 * 1024
/**
 * Staging buffers per file: two writes in flight while the third fills (1 GiB in 4 MiB O_DIRECT
 * writes here: 0.76-0.90 s one at a time, 0.49-0.73 s two at a time, 0.75-1.00 s four at a time).
 */
const STAGES = 3
/** Calls of issueAligned() whose direct writes may run at once (see there). */
const ALIGNED_AHEAD = 2
/** Bytes gathered before a buffered vectored write. */
const BUFFERED_WRITE = 4 * 1024 * 1024

/** Free page-aligned staging buffers of STAGE bytes, shared by every pack of this process. */
const freeStages: Buffer[] = []

function takeStage(): Buffer {
  const b = freeStages.pop()
  if (b) return b
  const mem = new WebAssembly.Memory({ initial: STAGE / 65536, maximum: STAGE / 65536 })
  return Buffer.from(mem.buffer, 0, STAGE)
}

/** Folders where O_DIRECT was refused: packs there are written buffered without asking again. */
const noDirect = new Set<string>()
/** Folders where a first aligned direct write succeeded in this process (no probe write again). */
const directOk = new Set<string>()

const isEinval = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'EINVAL'
const alignUp = (n: number): number => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN

export class AppendWriter {
  /** Logical bytes appended so far (the pack's length once finished). */
  size = 0
  #err: { err: unknown } | null = null
  #lock: Promise<unknown> = Promise.resolve()
  // buffered mode
  #pending: Uint8Array[] = []
  #pendingBytes = 0
  #written = 0
  // direct mode: stages[cur] holds the bytes from file offset `base`, `fill` of them
  #stages: Buffer[] = []
  #inflight: Array<Promise<void> | null> = []
  /** issueAligned()'s writes in flight, oldest first (each settles, never rejects: errors go to #err). */
  #aligned: Array<Promise<void>> = []
  #cur = 0
  #fill = 0
  #base = 0

  private constructor(readonly fd: FileHandle, readonly direct: boolean) {
    if (direct) {
      this.#stages = Array.from({ length: STAGES }, takeStage)
      this.#inflight = this.#stages.map(() => null)
    }
  }

  /**
   * Create `path` (it must not exist; `mode` default 0o444, read-only) for appending. With `direct`,
   * O_DIRECT is tried first: an EINVAL from the open or from a first aligned write falls back to
   * buffered writes for this folder (`dir`, the file's folder).
   */
  static async create(path: string, dir: string, opts: { direct: boolean; mode?: number }): Promise<AppendWriter> {
    const { O_WRONLY, O_CREAT, O_EXCL, O_DIRECT } = constants
    const mode = opts.mode ?? 0o444
    if (opts.direct && O_DIRECT !== undefined && !noDirect.has(dir)) {
      let fd: FileHandle | null = null
      try {
        fd = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, mode)
        const w = new AppendWriter(fd, true)
        // a first aligned write proves the filesystem takes direct writes from this memory (once per folder)
        if (!directOk.has(dir)) {
          try { await fd.write(w.#stages[0]!.fill(0, 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0) } catch (err) { w.#release(); throw err }
          directOk.add(dir)
        }
        return w
      } catch (err) {
        await fd?.close().catch(() => {})
        if (!isEinval(err)) { if (fd) await rm(path, { force: true }); throw err }
        noDirect.add(dir)
        await rm(path, { force: true }) // created before the refusal: start again, buffered
      }
    }
    return new AppendWriter(await open(path, 'wx', mode), false)
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(() => { if (this.#err) throw this.#err.err; return op() })
    this.#lock = next.catch(() => {})
    return next
  }

  #fail(err: unknown): never {
    this.#err ??= { err }
    throw err
  }

  /**
   * Append `parts` in order. Direct mode: copied into staging before the promise settles (full
   * blocks go to the disk in the background). Buffered mode: the parts are referenced until
   * release() or a later write, so the caller must not change them before.
   */
  append(parts: readonly Uint8Array[]): Promise<void> {
    return this.#serial(async () => {
      for (const p of parts) this.size += p.length
      if (!this.direct) {
        for (const p of parts) { this.#pending.push(p); this.#pendingBytes += p.length }
        if (this.#pendingBytes >= BUFFERED_WRITE) await this.#writePending()
        return
      }
      for (const p of parts) {
        let at = 0
        while (at < p.length) {
          const n = Math.min(p.length - at, STAGE - this.#fill)
          this.#stages[this.#cur]!.set(p.subarray(at, at + n), this.#fill)
          this.#fill += n
          at += n
          if (this.#fill === STAGE) await this.#submitFull()
        }
      }
    })
  }

  /**
   * Append `len` bytes that the caller holds at `block[head, head + len)`, their whole blocks written
   * straight from `block` (get's output: src/zoo/checkout.ts); only the partial blocks at either end
   * (under DIRECT_ALIGN bytes each) are copied, between `block` and staging. `block` must start on a
   * page boundary, `head` must be `size % DIRECT_ALIGN` (the caller lays its bytes out at their file
   * offset's alignment), and `block` must have room up to the next DIRECT_ALIGN boundary past
   * `head + len`. Direct mode: this writer copies the file's last partial block (fewer than
   * DIRECT_ALIGN bytes, kept from the previous call) into `block[0, head)`, writes every whole block
   * of `block` at its file offset, and keeps the new partial block for the next call or finish().
   * Buffered mode: the bytes appended before are written, then these with one positional write. The
   * caller may reuse `block` once the promise settles. A writer takes append() and appendAligned()
   * mixed (the store's packs: records copied, then slabs laid out as records): before an aligned
   * append the whole blocks staged are written and only the partial block stays staged.
   */
  appendAligned(block: Uint8Array, head: number, len: number): Promise<void> {
    return this.issueAligned(block, head, len).then((r) => r.written)
  }

  /**
   * appendAligned() in two steps: the promise settles once the writes are issued (the file offsets
   * taken, the partial blocks copied), so the next append, aligned or not, can go on while they run;
   * `written` settles when they are done and `block` may be reused (it rejects with the write's
   * error, which every later call also throws). Direct writes of successive calls overlap, at most
   * ALIGNED_AHEAD calls at a time: the disk is never left idle between two slabs (a gap of 1-2 ms
   * per 8 MiB slab and ~15 ms per pack when each call waited for its own writes).
   */
  issueAligned(block: Uint8Array, head: number, len: number): Promise<{ written: Promise<void> }> {
    return this.#serial(async () => {
      if (!this.direct) {
        await this.#writePending()
        this.size += len
        try { this.#written += await writeAllAt(this.fd, [block.subarray(head, head + len)], this.#written) } catch (err) { this.#fail(err) }
        return { written: Promise.resolve() }
      }
      await this.#stageWholeBlocksOut()
      if (head !== this.#fill || this.#base % DIRECT_ALIGN !== 0 || block.byteOffset % DIRECT_ALIGN !== 0) {
        throw new Error(`appendAligned: the bytes must start at offset ${this.#fill} of a page-aligned block (got ${head}, block offset ${block.byteOffset})`)
      }
      // at most ALIGNED_AHEAD calls' writes in flight: each holds one of libuv's four threads, and
      // the reads that fill the next slabs need the others
      while (this.#aligned.length >= ALIGNED_AHEAD) await this.#aligned.shift()
      if (this.#err) throw this.#err.err
      const stage = this.#stages[this.#cur]!
      block.set(stage.subarray(0, head), 0)
      const end = head + len
      const whole = end - (end % DIRECT_ALIGN)
      const at = this.#base
      const write = whole === 0 ? Promise.resolve()
        : writeAllAt(this.fd, [block.subarray(0, whole)], at).then(() => {}, (err: unknown) => { this.#err ??= { err }; throw err })
      const settled = write.then(() => {}, () => {})
      this.#aligned.push(settled)
      this.#base += whole
      this.#fill = end - whole
      stage.set(block.subarray(whole, end), 0)
      this.size += len
      return { written: write.then(() => { if (this.#err) throw this.#err.err }) }
    })
  }

  /**
   * Write the whole blocks of the current staging buffer (append()'s records since the last full
   * buffer) and move its partial block to its start, so `#fill` < DIRECT_ALIGN: an aligned append
   * can then go on from the caller's block. Writes of earlier buffers still in flight are left to go
   * on (they are at lower offsets; their errors surface as usual).
   */
  async #stageWholeBlocksOut(): Promise<void> {
    const whole = this.#fill - (this.#fill % DIRECT_ALIGN)
    if (whole === 0) return
    const stage = this.#stages[this.#cur]!
    try { await writeAllAt(this.fd, [stage.subarray(0, whole)], this.#base) } catch (err) { this.#fail(err) }
    stage.copyWithin(0, whole, this.#fill)
    this.#base += whole
    this.#fill -= whole
  }

  /** Once this settles, the caller may reuse every buffer it appended (their bytes are in the kernel or in staging). */
  release(): Promise<void> {
    return this.#serial(async () => { if (!this.direct) await this.#writePending() })
  }

  /** Everything appended can be read through another handle of the file once this settles. */
  readable(): Promise<void> {
    return this.#serial(async () => {
      if (!this.direct) { await this.#writePending(); return }
      await this.#drain()
      await this.#writeTail()
    })
  }

  /** Write everything and leave the file exactly `size` bytes long (not fsynced). Staging is given back. */
  finish(): Promise<void> {
    return this.#serial(async () => {
      if (!this.direct) { await this.#writePending(); return }
      await this.#drain()
      await this.#writeTail()
      if (this.#base + alignUp(this.#fill) !== this.size) {
        try { await this.fd.truncate(this.size) } catch (err) { this.#fail(err) }
      }
      this.#release()
    })
  }

  /** Wait for writes in flight and give the staging back (a pack abandoned after a failure). */
  async abandon(): Promise<void> {
    await this.#lock
    await Promise.allSettled([...this.#inflight.filter(Boolean), ...this.#aligned.splice(0)])
    this.#release()
  }

  #release(): void {
    if (this.#stages.length) freeStages.push(...this.#stages)
    this.#stages = []
  }

  async #writePending(): Promise<void> {
    if (this.#pending.length === 0) return
    const bufs = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    try { this.#written += await writeAllAt(this.fd, bufs, this.#written) } catch (err) { this.#fail(err) }
  }

  /** The current staging buffer is full: write it in the background and go on in the next one. */
  async #submitFull(): Promise<void> {
    const i = this.#cur
    const at = this.#base
    const w = writeAllAt(this.fd, [this.#stages[i]!], at).then(() => { this.#inflight[i] = null }, (err: unknown) => { this.#err ??= { err } })
    this.#inflight[i] = w
    this.#base += STAGE
    this.#fill = 0
    this.#cur = (i + 1) % this.#stages.length
    const other = this.#inflight[this.#cur]
    if (other) await other
    if (this.#err) throw this.#err.err
  }

  async #drain(): Promise<void> {
    await Promise.all([...this.#inflight.filter(Boolean), ...this.#aligned.splice(0)])
    if (this.#err) throw this.#err.err
  }

  /** Write the partial block(s) of the current staging buffer, zero-padded; they stay staged for the next appends. */
  async #writeTail(): Promise<void> {
    if (this.#fill === 0) return
    const len = alignUp(this.#fill)
    const stage = this.#stages[this.#cur]!
    stage.fill(0, this.#fill, len)
    try { await writeAllAt(this.fd, [stage.subarray(0, len)], this.#base) } catch (err) { this.#fail(err) }
  }
}
