/**
 * Byte access shared by the format readers. Readers never see a file handle: the caller passes
 * `read(offset, length)`, which must resolve to exactly `length` bytes (readers never ask past the
 * size they were given). Every length a reader takes from the file is checked against that size
 * before anything is read or allocated.
 */
import { FormatError, ZooError, type CodeWithExit } from '../errors.js'

/** Reads `length` bytes at `offset`. Must return exactly `length` bytes. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>

/** A read that returned fewer or more bytes than asked: an I/O fault, not a format problem. */
export class ShortReadError extends ZooError {
  constructor(offset: number, asked: number, got: number) {
    super(`short read: asked ${asked} bytes at offset ${offset}, got ${got}`, 'E_SHORT_READ', { offset, asked, got })
  }
}

export async function readExact(read: ReadAt, offset: number, length: number): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0)
  const bytes = await read(offset, length)
  if (bytes.length !== length) throw new ShortReadError(offset, length, bytes.length)
  return bytes
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A u64 as a JS number, or a FormatError naming `what` when it is not a safe integer. */
export function safeNumber(value: bigint, what: string, code: CodeWithExit<3>): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FormatError(`${what} is ${value}, beyond any file this tool reads`, code, { what, value: value.toString() })
  }
  return Number(value)
}

/** "2^63" style for values that are exact powers of two, else the decimal value. */
export function describeBig(value: bigint): string {
  if (value > 0n && (value & (value - 1n)) === 0n && value >= 1024n) return `2^${value.toString(2).length - 1}`
  return value.toString()
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Strict UTF-8 decoding; undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return fatalUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * Sequential reader over `read` with a bounded window (default 1 MiB, or the single field asked
 * for, whichever is larger). Every `need(n)` is checked against the file size first, so a hostile
 * length can make it fail but never allocate more than the bytes that are really there.
 */
export class Cursor {
  pos = 0
  private buf: Uint8Array = new Uint8Array(0)
  private bufStart = 0

  constructor(private readonly read: ReadAt, readonly size: number, readonly littleEndian: boolean,
              private readonly code: CodeWithExit<3>, private readonly label: string, private readonly window = 1 << 20) {}

  get remaining(): number { return this.size - this.pos }

  /** Makes bytes [pos, pos+n) available; returns their start index inside the window buffer. */
  async need(n: number, what: string): Promise<number> {
    if (n > this.remaining) {
      throw new FormatError(`${this.label}: ${what} needs ${n} bytes at offset ${this.pos} but the file ends at ${this.size}`,
        this.code, { offset: this.pos, need: n, size: this.size })
    }
    const inBuf = this.pos - this.bufStart
    if (inBuf >= 0 && inBuf + n <= this.buf.length) return inBuf
    const length = Math.min(Math.max(n, this.window), this.remaining)
    this.buf = await readExact(this.read, this.pos, length)
    this.bufStart = this.pos
    return 0
  }

  async bytes(n: number, what: string): Promise<Uint8Array> {
    const at = await this.need(n, what)
    this.pos += n
    return this.buf.subarray(at, at + n)
  }

  skip(n: number | bigint, what: string): void {
    if (BigInt(n) > BigInt(this.remaining)) {
      throw new FormatError(`${this.label}: ${what} of ${typeof n === 'bigint' ? describeBig(n) : n} bytes at offset ${this.pos} runs past the end of the file (${this.size})`,
        this.code, { offset: this.pos, need: n.toString(), size: this.size })
    }
    this.pos += Number(n)
  }

  async u8(what: string): Promise<number> { return (await this.bytes(1, what))[0]! }
  async u32(what: string): Promise<number> { return view(await this.bytes(4, what)).getUint32(0, this.littleEndian) }
  async u64(what: string): Promise<bigint> { return view(await this.bytes(8, what)).getBigUint64(0, this.littleEndian) }
}
