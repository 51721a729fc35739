/**
 * BLAKE3 (256-bit digests), the chunk hash of zoos whose `.zoo/config.json` says
 * `"chunk_hash": "blake3"`. One API for the calling thread and for worker threads, so every
 * digest of a raw chunk comes from the same implementation.
 *
 * Two implementations give the same digests:
 * - native: dist/native/blake3.node, the addon scripts/build-native.mjs compiles from
 *   src/cas/blake3/ when a C compiler is there (SIMD lanes: AVX-512, AVX2, SSE4.1, 128-bit vectors,
 *   chosen for the CPU at run time; spec/native.md): 0.14 CPU seconds per GiB with AVX-512,
 *   0.35 with AVX2, 0.65 with 128-bit vectors on the development VM, as fast as b3sum;
 * - js: `@noble/hashes` (audited, pure JS), correct everywhere and slow (~25 CPU seconds per GiB).
 * The addon is used when it is there and loads; it is found from this module's own location, which
 * is the same project whether this runs from src/ (tsx), dist/src/ (tsc) or the dist/cli/ bundle.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3'

export const BLAKE3_LEN = 32

/** What dist/native/blake3.node exports (src/cas/blake3/addon.c). */
export interface NativeBlake3 {
  /**
   * The digest of all of `bytes` (a typed array, DataView or ArrayBuffer) with the named variant
   * (default: the widest). A SharedArrayBuffer goes through a view over it (`new Uint8Array(sab)`):
   * a bare one is refused with a TypeError.
   */
  hash(bytes: ArrayBufferView | ArrayBuffer, variant?: string): Uint8Array
  /**
   * Digests of `src`'s byte ranges `[offs[i], offs[i] + lens[i])` into `out` from `outOff`; a bad
   * argument throws, nothing is written. The digests' bytes in `out` must not overlap a range of
   * `src` (a RangeError).
   */
  hashRanges(src: ArrayBufferView | ArrayBuffer, offs: ArrayLike<number>, lens: ArrayLike<number>, out: ArrayBufferView | ArrayBuffer, outOff?: number, variant?: string): void
  /** The variants this CPU runs, widest first (`avx512`, `avx2`, `sse41`, `vec128`, `portable`). */
  variants(): string[]
  /** The widest of them, the default. */
  variant: string
}

/** The project root (package.json beside .zoo-template/), walking up from this module; undefined if not found. */
function projectRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, '.zoo-template'))) return dir
    const up = dirname(dir)
    if (up === dir) return undefined
    dir = up
  }
}

/** Where the addon is when `npm run build` (or an install) built it. */
export function blake3NativePath(): string | undefined {
  const root = projectRoot()
  return root === undefined ? undefined : join(root, 'dist', 'native', 'blake3.node')
}

interface Loaded { addon: NativeBlake3; path: string }
let loaded: Loaded | null | undefined // undefined: not looked for yet; null: not there or did not load
let loadError: string | undefined
let chosen: 'native' | 'js' | undefined

function loadNative(): Loaded | null {
  if (loaded !== undefined) return loaded
  loaded = null
  const path = blake3NativePath()
  if (path === undefined || !existsSync(path)) {
    loadError = `no addon at ${path ?? 'dist/native/blake3.node'}`
    return loaded
  }
  try {
    loaded = { addon: createRequire(import.meta.url)(path) as NativeBlake3, path }
  } catch (e) {
    // a stale or foreign build: the JS implementation gives the same digests
    loadError = `${path} did not load: ${e instanceof Error ? e.message : String(e)}`
  }
  return loaded
}

/** The addon this process uses, or null when it uses the JS implementation. */
function active(): Loaded | null {
  if (chosen === undefined) chosen = loadNative() ? 'native' : 'js'
  return chosen === 'native' ? loaded! : null
}

/**
 * Pick the implementation: `auto` (the default: the addon when it is there and loads), `native`
 * (throws when it cannot be loaded, with why) or `js`. Affects this thread and the workers started
 * from `blake3WorkerPrelude()` afterwards. Returns the one in use.
 */
export function selectBlake3Backend(choice: 'auto' | 'native' | 'js'): 'native' | 'js' {
  if (choice === 'js') chosen = 'js'
  else {
    chosen = loadNative() ? 'native' : 'js'
    if (choice === 'native' && chosen === 'js') throw new Error(`blake3: the native addon is not available (${loadError}); run \`npm run build\` with a C compiler`)
  }
  return chosen
}

/** The addon's own API (variants included) when it is there and loads, else null; for tests and benchmarks. */
export function blake3Native(): NativeBlake3 | null {
  return loadNative()?.addon ?? null
}

/** The 32-byte BLAKE3 digest of `bytes`. */
export function blake3(bytes: Uint8Array): Uint8Array {
  const n = active()
  return n ? n.addon.hash(bytes) : nobleBlake3(bytes)
}

/**
 * Digests of the ranges `[offs[i], offs[i] + lens[i])` of `src`, written side by side into `out`
 * from `outOff` (32 bytes each). Ranges outside `src`, an `out` too small, or digests that would
 * land on a range (`out` and `src` over the same bytes) throw a RangeError and write nothing.
 */
export function blake3Ranges(src: Uint8Array, offs: ArrayLike<number>, lens: ArrayLike<number>, out: Uint8Array, outOff = 0): void {
  const n = active()
  if (n) return n.addon.hashRanges(src, offs, lens, out, outOff)
  if (offs.length !== lens.length) throw new RangeError(`blake3: offs and lens must have the same length (${offs.length} and ${lens.length})`)
  if (!(Number.isSafeInteger(outOff) && outOff >= 0 && outOff + 32 * offs.length <= out.length)) throw new RangeError(`blake3: out (${out.length} bytes) cannot hold ${offs.length} digests from byte ${outOff}`)
  for (let i = 0; i < offs.length; i++) {
    const o = offs[i]!, l = lens[i]!
    if (!(Number.isSafeInteger(o) && Number.isSafeInteger(l) && o >= 0 && l >= 0 && o + l <= src.length)) throw new RangeError(`blake3: range ${i} [${o}, ${o} + ${l}) is outside src (${src.length} bytes)`)
  }
  if (src.buffer === out.buffer) {
    // as the addon: a digest written into a range not hashed yet would change what is hashed
    const d0 = out.byteOffset + outOff, d1 = d0 + 32 * offs.length
    for (let i = 0; i < offs.length; i++) {
      const r0 = src.byteOffset + offs[i]!, r1 = r0 + lens[i]!
      if (r0 < r1 && r0 < d1 && d0 < r1) throw new RangeError(`blake3: out's digests [${outOff}, ${outOff + 32 * offs.length}) overlap range ${i} of src; write them where no range is read`)
    }
  }
  for (let i = 0; i < offs.length; i++) out.set(nobleBlake3(src.subarray(offs[i]!, offs[i]! + lens[i]!)), outOff + 32 * i)
}

/** Which implementation this process uses. */
export function blake3Backend(): 'native' | 'js' {
  return active() ? 'native' : 'js'
}

/** Why this process hashes BLAKE3 in JavaScript (the addon missing or not loading); undefined when it uses the addon. */
export function blake3FallbackReason(): string | undefined {
  return active() ? undefined : loadError ?? 'the JavaScript implementation was chosen'
}

/**
 * CommonJS source for a worker thread evaluated from a string: it defines
 * `blake3Ranges(src, offs, lens, out)` with the same implementation as this thread's (the addon,
 * required by its absolute path, or @noble/hashes).
 */
export function blake3WorkerPrelude(): string {
  const n = active()
  if (n) {
    return `
const __blake3Native = require(${JSON.stringify(n.path)})
function blake3Ranges(src, offs, lens, out) {
  __blake3Native.hashRanges(src, offs, lens, out, 0)
}
`
  }
  const path = createRequire(import.meta.url).resolve('@noble/hashes/blake3')
  return `
const { blake3: __nobleBlake3 } = require(${JSON.stringify(path)})
function blake3Ranges(src, offs, lens, out) {
  for (let i = 0; i < offs.length; i++) out.set(__nobleBlake3(src.subarray(offs[i], offs[i] + lens[i])), 32 * i)
}
`
}
