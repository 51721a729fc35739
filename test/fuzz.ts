/**
 * A seeded mutation fuzzer for every parser that reads outside input (issue 16; ../shared/RELIABILITY.md,
 * "Writing files out and reading formats"). jazzer.js needs prebuilt native binaries from GitHub,
 * which this machine cannot reach, so the fuzzer is our own: valid seed inputs per parser, mutated
 * deterministically (bit flips, interesting bytes, truncation, extension, splices, length fields set
 * to boundary values), each result fed to the parser. A parser must return or throw a ZooError:
 * anything else (RangeError, TypeError, a stack overflow, a call over TIME_LIMIT_MS, a heap jump over
 * HEAP_LIMIT) is a defect, and its input is what test/corpus/<target>/ keeps (replayed by npm test).
 * Targets with a property check more than "no crash": an accepted path stays inside its folder, an
 * accepted CID is sha2-256 raw/dag-cbor, an accepted dag-cbor block re-encodes to its bytes.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { join, resolve, sep } from 'node:path'
import { mkdir, writeFile } from 'node:fs/promises'
import { ZooError } from '../src/errors.js'
import { CID } from 'multiformats/cid'
import { chunkCid, cidOf, RAW, DAG_CBOR, parseCid, checkCidForm } from '../src/cas/cid.js'
import { describeFile } from '../src/formats/index.js'
import { parseSafetensorsHeader, safetensorsHeaderLength, encodeSafetensors } from '../src/formats/safetensors.js'
import { readZipLayout } from '../src/formats/zip.js'
import { readGgufLayout } from '../src/formats/gguf.js'
import { npyHeaderLength, parseNpyHeader } from '../src/formats/npy.js'
import { scanPickle, PICKLE_ALLOWED_CALLABLES, PICKLE_ALLOWED_REFERENCES } from '../src/formats/pickle-scan.js'
import { readOnnxLayout } from '../src/onnx/inspect.js'
import { encodeMlpOnnx } from '../src/onnx/encode.js'
import { zipFile } from './eval-fixtures.js'
import { checkSeal, computeSeal, parseManifest, serializeManifest, type ManifestBody } from '../src/manifest/manifest.js'
import { decodeStrict, encodeCanonical } from '../src/manifest/cbor.js'
import { decodeNode, encodeNode } from '../src/manifest/node.js'
import { checkRelPath } from '../src/manifest/names.js'
import { encodeNpy } from '../src/demo/data.js'
import { HttpStore } from '../src/remote/http.js'

export const TIME_LIMIT_MS = 2000
export const HEAP_LIMIT = 512 * 1024 * 1024

/** Deterministic xorshift32. */
export class Rng {
  private s: number
  constructor(seed: number) { this.s = (seed >>> 0) || 0x9e3779b9 }
  next(): number { let x = this.s; x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; this.s = x; return x }
  below(n: number): number { return n <= 0 ? 0 : this.next() % n }
  pick<T>(xs: readonly T[]): T { return xs[this.below(xs.length)]! }
}

const readAt = (b: Uint8Array) => async (offset: number, length: number): Promise<Uint8Array> =>
  b.subarray(Math.min(offset, b.length), Math.min(offset + length, b.length))

// ---------- seeds ----------

function gguf(): Uint8Array {
  const parts: Buffer[] = []
  const u32 = (v: number): void => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b) }
  const u64 = (v: number): void => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b) }
  const str = (s: string): void => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)) }
  parts.push(Buffer.from('GGUF')); u32(3); u64(2); u64(3)
  str('general.architecture'); u32(8); str('llama')
  str('general.alignment'); u32(4); u32(32)
  str('tokenizer.ggml.tokens'); u32(9); u32(8); u64(2); str('a'); str('bb')
  str('w'); u32(2); u64(4); u64(2); u32(0); u64(0)
  str('q'); u32(1); u64(32); u32(8); u64(32)
  const len = parts.reduce((a, b) => a + b.length, 0)
  parts.push(Buffer.alloc((32 - (len % 32)) % 32), Buffer.alloc(32, 1), Buffer.alloc(34, 2))
  return Buffer.concat(parts)
}

function pickle(): Uint8Array {
  // protocol 2: a dict {'w': collections.OrderedDict()} built with GLOBAL + REDUCE, then STOP
  return Buffer.concat([
    Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00]), // PROTO 2, EMPTY_DICT, BINPUT 0
    Buffer.from('X\x01\x00\x00\x00w', 'latin1'), // BINUNICODE 'w'
    Buffer.from('ccollections\nOrderedDict\n', 'latin1'), // GLOBAL
    Buffer.from([0x29, 0x52]), // EMPTY_TUPLE, REDUCE
    Buffer.from([0x73, 0x2e]), // SETITEM, STOP
  ])
}

function manifestText(): string {
  const body: ManifestBody = {
    zoo: 1, name: 'fuzz/net', version: 1, seed: 1, params: { lr: 0.1 }, metrics: { acc: 0.5 },
    files: [{ path: 'w/model.safetensors', size: 3, sha256: 'b'.repeat(64), root: cidOf(RAW, new Uint8Array([1, 2, 3])).toString(), format: 'safetensors' }],
    parents: [{ name: 'fuzz/base', version: 1, seal: cidOf(DAG_CBOR, new Uint8Array([9])).toString(), relation: 'fine-tune' }],
    env: { node: 'v20' }, promoter: 'A <a@example.invalid>', created: '2026-11-22T00:00:00.000Z',
  } as ManifestBody
  return serializeManifest({ ...body, seal: computeSeal(body) })
}

const tensorsFile = (): Uint8Array => encodeSafetensors([
  { name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24) },
  { name: 'b', dtype: 'I64', shape: [1], data: new Uint8Array(8) },
], { format: 'pt' })

const onnxFile = (): Uint8Array => encodeMlpOnnx([{ name: 'layers.0.weight', shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) }, { name: 'layers.0.bias', shape: [2], data: new Float32Array(2) }], { activation: 'relu' })

const npyFile = (): Uint8Array => encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3])

const nodeBlock = (): Uint8Array => encodeNode({ size: 6, leaf: true, links: [[cidOf(RAW, new Uint8Array([1, 2, 3])), 3], [cidOf(RAW, new Uint8Array([4, 5, 6])), 3]] }).bytes

// ---------- targets ----------

export interface Target {
  name: string
  /** The valid inputs mutations start from. */
  seeds: () => Uint8Array[]
  /**
   * Feed one input; throw to report a failed property (a ZooError counts as a clean refusal). May
   * return false for an input refused without an exception (the pickle scan reports ok: false).
   */
  run: (input: Uint8Array) => Promise<boolean | void>
  /** Mutations per run are applied to bytes; text targets mutate the UTF-8 and decode it back. */
  text?: boolean
  /**
   * Where the input holds JSON (the whole input, or a safetensors header after its 8-byte length):
   * half of the mutations then replace a value inside the parsed JSON (structure-aware).
   */
  json?: 'whole' | 'safetensors'
}

const fail = (why: string): never => { throw new Error(`property failed: ${why}`) }
const utf8 = (b: Uint8Array): string => Buffer.from(b).toString('utf8')

/** An in-process HTTP server on 127.0.0.1 answering every request with the bytes it is told to. */
export class ReplyServer {
  body: Uint8Array = new Uint8Array(0)
  contentLength: number | null = null
  private server: Server | undefined
  url = ''
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const headers: Record<string, string> = { 'content-type': req.url?.endsWith('/') ? 'text/html' : 'application/octet-stream' }
      if (this.contentLength !== null) headers['content-length'] = String(this.contentLength)
      res.writeHead(200, headers)
      res.end(Buffer.from(this.body))
    })
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r))
    const a = this.server.address() as { port: number }
    this.url = `http://127.0.0.1:${a.port}/zoo/`
  }
  async close(): Promise<void> { await new Promise<void>((r) => this.server?.close(() => r())); this.server?.closeAllConnections() }
}

let replies: ReplyServer | undefined
async function replyServer(): Promise<ReplyServer> {
  if (!replies) { replies = new ReplyServer(); await replies.start() }
  return replies
}
export async function closeFuzzServers(): Promise<void> { await replies?.close(); replies = undefined }

const OBJECT = new Uint8Array(Buffer.from('an object served by a remote'))
const OBJECT_CID = cidOf(RAW, OBJECT)
/** The three CID forms spec/format.md trusts: raw + sha2-256, raw + blake3, dag-cbor + sha2-256 (32-byte digests). */
const trustedForm = (c: CID): boolean => c.version === 1 && c.multihash.digest.length === 32 &&
  ((c.multihash.code === 0x12 && (c.code === RAW || c.code === DAG_CBOR)) || (c.multihash.code === 0x1e && c.code === RAW))

export const TARGETS: Target[] = [
  {
    name: 'safetensors', json: 'safetensors',
    seeds: () => [tensorsFile()],
    run: async (b) => { const n = safetensorsHeaderLength(b.subarray(0, 8)); parseSafetensorsHeader(b.subarray(0, Math.min(b.length, 8 + n)), b.length) },
  },
  { name: 'onnx', seeds: () => [onnxFile()], run: async (b) => { await readOnnxLayout(readAt(b), b.length) } },
  {
    name: 'zip',
    seeds: () => [zipFile([{ name: 'archive/data.pkl', data: pickle() }, { name: 'archive/data/0', data: new Uint8Array(64), deflate: true }]),
      zipFile([{ name: 'x.npy', data: npyFile() }, { name: 'y.npy', data: npyFile(), deflate: true }])],
    run: async (b) => { await readZipLayout(readAt(b), b.length) },
  },
  { name: 'gguf', seeds: () => [gguf()], run: async (b) => { await readGgufLayout(readAt(b), b.length) } },
  {
    name: 'npy',
    seeds: () => [npyFile()],
    run: async (b) => { const n = npyHeaderLength(b.subarray(0, Math.min(b.length, 12))); parseNpyHeader(b.subarray(0, Math.min(b.length, n)), b.length) },
  },
  {
    name: 'pickle', seeds: () => [pickle()],
    run: async (b) => {
      const r = scanPickle(b)
      if (r.ok && r.globals.some((g) => !PICKLE_ALLOWED_CALLABLES.has(g) && !PICKLE_ALLOWED_REFERENCES.has(g))) fail(`a stream with global ${r.globals.join(', ')} passed the scan`)
      return r.ok
    },
  },
  {
    name: 'describe', // the add pipeline's sniff + format readers (npz, .pt zips, ...), which must never throw on content
    seeds: () => [tensorsFile(), onnxFile(), gguf(), npyFile(), pickle(), zipFile([{ name: 'x.npy', data: npyFile() }]),
      zipFile([{ name: 'archive/data.pkl', data: pickle() }, { name: 'archive/data/0', data: new Uint8Array(64) }])],
    run: async (b) => { await describeFile(readAt(b), b.length) },
  },
  {
    name: 'manifest', text: true, json: 'whole',
    seeds: () => [Buffer.from(manifestText())],
    run: async (b) => {
      const m = parseManifest(utf8(b), 'fuzz')
      for (const f of m.files) checkRelPath(f.path) // an accepted manifest has only safe paths
      return checkSeal(m).ok // a manifest whose seal does not hold is refused by every reader (E_SEAL_MISMATCH)
    },
  },
  {
    name: 'cbor',
    seeds: () => [nodeBlock(), encodeCanonical({ a: 1, b: [true, null, 'x'], c: { d: new Uint8Array([1]) } })],
    run: async (b) => {
      const v = decodeStrict(b, 'fuzz')
      const again = encodeCanonical(v)
      if (Buffer.compare(Buffer.from(again), Buffer.from(b)) !== 0) fail('a non-canonical block was accepted')
    },
  },
  { name: 'node', seeds: () => [nodeBlock()], run: async (b) => { decodeNode(b, cidOf(DAG_CBOR, b)) } },
  {
    name: 'path', text: true,
    seeds: () => ['model.safetensors', 'a/b/c.bin', 'checkpoint_000001/w.pt', '.hidden/x'].map((s) => Buffer.from(s)),
    run: async (b) => {
      const p = utf8(b)
      checkRelPath(p)
      const base = resolve('/fuzz/out')
      const target = resolve(base, p)
      if (!target.startsWith(base + sep)) fail(`accepted path ${JSON.stringify(p)} escapes the folder`)
      if (p.split('/').some((s) => s.toLowerCase().replace(/[. ]+$/, '') === '.git')) fail(`accepted path ${JSON.stringify(p)} names .git`)
    },
  },
  {
    name: 'cid', text: true,
    seeds: () => [OBJECT_CID.toString(), cidOf(DAG_CBOR, new Uint8Array([1])).toString(), chunkCid('blake3', new Uint8Array([1])).toString()].map((s) => Buffer.from(s)),
    run: async (b) => {
      const c = parseCid(utf8(b))
      if (!trustedForm(c)) fail(`weak CID ${c} accepted`)
    },
  },
  {
    name: 'cid-bytes',
    seeds: () => [OBJECT_CID.bytes, cidOf(DAG_CBOR, new Uint8Array([1])).bytes, chunkCid('blake3', new Uint8Array([1])).bytes],
    run: async (b) => {
      let c: CID
      try { c = CID.decode(b) } catch { return } // the multiformats decoder's own refusal: never trusted further
      checkCidForm(c)
      if (!trustedForm(c)) fail(`weak CID ${c} accepted`)
    },
  },
  {
    name: 'remote-object', // an http remote answering GET of an object with mutated bytes
    seeds: () => [OBJECT],
    run: async (b) => {
      const server = await replyServer()
      server.body = b
      server.contentLength = null
      const store = new HttpStore(server.url, { deadlineMs: TIME_LIMIT_MS, idleTimeoutMs: TIME_LIMIT_MS })
      try {
        const got = await store.get(OBJECT_CID)
        if (Buffer.compare(Buffer.from(got), Buffer.from(OBJECT)) !== 0) fail('wrong bytes returned for a CID')
      } finally { await store.close() }
    },
  },
  {
    name: 'remote-listing', // an http remote's folder listing (autoindex HTML), mutated
    seeds: () => [Buffer.from(`<html><body><a href="../">../</a><a href="${OBJECT_CID}">${OBJECT_CID}</a><a href='x/'>x/</a></body></html>`)],
    run: async (b) => {
      const server = await replyServer()
      server.body = b
      server.contentLength = null
      const store = new HttpStore(server.url, { deadlineMs: TIME_LIMIT_MS, idleTimeoutMs: TIME_LIMIT_MS })
      try {
        for await (const c of store.list()) checkCidForm(c)
      } finally { await store.close() }
    },
  },
]

// ---------- mutation ----------

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x2f, 0x5c, 0x2e, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x30]
const INTERESTING64 = [0n, 1n, 0x7fn, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]

export function mutate(rng: Rng, input: Uint8Array, pool: Uint8Array[]): Uint8Array {
  let b = Buffer.from(input)
  const rounds = 1 + rng.below(4)
  for (let r = 0; r < rounds; r++) {
    const at = rng.below(Math.max(1, b.length))
    switch (rng.below(9)) {
      case 0: if (b.length) b[at]! ^= 1 << rng.below(8); break
      case 1: if (b.length) b[at] = rng.pick(INTERESTING8); break
      case 2: b = b.subarray(0, rng.below(b.length + 1)); break // truncate
      case 3: { // a length field set to a boundary value (or the input's own size, +-1)
        const width = rng.pick([1, 2, 4, 8])
        if (b.length < width) break
        const pos = rng.below(b.length - width + 1)
        const v = rng.below(4) === 0 ? BigInt(Math.max(0, b.length + rng.below(3) - 1)) : rng.pick(INTERESTING64)
        for (let i = 0; i < width; i++) b[pos + i] = Number((v >> BigInt(8 * i)) & 0xffn)
        break
      }
      case 4: { const n = rng.below(64); b = Buffer.concat([b, Buffer.from(Array.from({ length: n }, () => rng.below(256)))]); break } // extend
      case 5: { const n = 1 + rng.below(16); b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + n))]); break } // delete
      case 6: { const n = 1 + rng.below(32); const from = rng.below(Math.max(1, b.length)); b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)]); break } // duplicate
      case 7: { const other = rng.pick(pool); const from = rng.below(Math.max(1, other.length)); b = Buffer.concat([b.subarray(0, at), Buffer.from(other.subarray(from, from + 1 + rng.below(64)))]); break } // splice
      case 8: if (b.length) { const n = Math.min(b.length - at, 1 + rng.below(8)); for (let i = 0; i < n; i++) b[at + i] = rng.below(256) } break
    }
  }
  return b
}

const JSON_VALUES: unknown[] = [0, -1, 1, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 2 ** 64, 1e308, -1e308, 0.5, NaN, '', 'x'.repeat(5000), '../../x', '/abs',
  '.git/hooks/x', 'a\u0000b', 'F32', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', true, null, [], {}, [0, 0], [0, 2 ** 62], [2 ** 53, 1],
  Array.from({ length: 64 }, (_, i) => i), { dtype: 'F32', shape: [1], data_offsets: [0, 4] }]

/** Replace one value (or key) somewhere inside parsed JSON with an interesting one. */
function mutateJsonValue(rng: Rng, v: unknown): unknown {
  if (Array.isArray(v) && v.length && rng.below(3)) { const c = [...v]; const i = rng.below(c.length); c[i] = mutateJsonValue(rng, c[i]); return c }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v)
    if (keys.length && rng.below(4)) {
      const c: Record<string, unknown> = { ...(v as Record<string, unknown>) }
      const k = rng.pick(keys)
      switch (rng.below(4)) {
        case 0: delete c[k]; break
        case 1: c[String(rng.pick(JSON_VALUES))] = c[k]; break // a new or odd key
        default: c[k] = mutateJsonValue(rng, c[k])
      }
      return c
    }
  }
  return structuredClone(rng.pick(JSON_VALUES))
}

/** A structure-aware mutation of a target's JSON, or undefined when the input does not parse. */
function mutateJson(rng: Rng, t: Target, input: Uint8Array): Uint8Array | undefined {
  const at = t.json === 'safetensors' ? 8 : 0
  let v: unknown
  try { v = JSON.parse(Buffer.from(input.subarray(at, t.json === 'safetensors' ? 8 + Number(Buffer.from(input).readBigUInt64LE(0)) : undefined)).toString('utf8')) } catch { return undefined }
  const text = Buffer.from(JSON.stringify(mutateJsonValue(rng, v)) ?? 'null')
  if (t.json === 'whole') return text
  const head = Buffer.alloc(8)
  head.writeBigUInt64LE(BigInt(text.length))
  const rest = input.subarray(8 + Number(Buffer.from(input).readBigUInt64LE(0)))
  return Buffer.concat([head, text, rest])
}

// ---------- running ----------

export interface Defect { target: string; input: Uint8Array; error: string }

/** Feed one input; returns the defect it shows, if any. */
export async function feed(t: Target, input: Uint8Array): Promise<Defect | undefined> {
  const heap = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  const start = performance.now()
  let error: string | undefined
  try {
    await t.run(input)
  } catch (err) {
    if (!(err instanceof ZooError)) error = `${(err as Error)?.name ?? 'throw'}: ${(err as Error)?.message ?? String(err)}`.slice(0, 300)
  }
  const ms = performance.now() - start
  if (!error && ms > TIME_LIMIT_MS) error = `took ${Math.round(ms)} ms (limit ${TIME_LIMIT_MS})`
  const grown = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heap
  if (!error && grown > HEAP_LIMIT) error = `memory grew by ${Math.round(grown / 2 ** 20)} MiB`
  return error ? { target: t.name, input, error } : undefined
}

/** `iterations` mutated inputs for a target, from `seed`; returns the defects found (first few per error kind). */
export async function fuzzTarget(t: Target, iterations: number, seed: number): Promise<{ runs: number; defects: Defect[] }> {
  const rng = new Rng(seed ^ parseInt(createHash('sha256').update(t.name).digest('hex').slice(0, 8), 16))
  const seeds = t.seeds()
  const pool = [...seeds]
  const defects: Defect[] = []
  const kinds = new Set<string>()
  for (let i = 0; i < iterations; i++) {
    const from = rng.pick(pool)
    const input = (t.json && input8(from) && rng.below(2) ? mutateJson(rng, t, from) : undefined) ?? mutate(rng, from, pool)
    const d = await feed(t, input)
    if (d) {
      const kind = d.error.replace(/\d+/g, 'N').slice(0, 80)
      if (!kinds.has(kind)) { kinds.add(kind); defects.push(d) }
    } else if (pool.length < 64 && rng.below(8) === 0) {
      pool.push(input) // keep some accepted or cleanly refused inputs to mutate further
    }
  }
  return { runs: iterations, defects }
}

const input8 = (b: Uint8Array): boolean => b.length >= 8

/** The corpus file name of an input: its sha256, shortened. */
export function corpusName(input: Uint8Array): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 16) + '.bin'
}

// ---------- known-bad inputs (test/corpus/<target>/bad-*.bin: each must be refused with a ZooError) ----------

function safetensorsWith(header: string, n?: bigint, data = 0): Uint8Array {
  const h = Buffer.from(header)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(n ?? BigInt(h.length))
  return Buffer.concat([len, h, Buffer.alloc(data)])
}

function cborHead(major: number, n: number): number[] { return n < 24 ? [(major << 5) | n] : [(major << 5) | 26, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255] }

/** Hostile inputs from ../shared/RELIABILITY.md's rows, named for what they try. */
export function knownBad(): Record<string, Array<[string, Uint8Array]>> {
  const manifest = JSON.parse(manifestText()) as { files: Array<{ path: string }> }
  const withPath = (p: string): Uint8Array => { const m = structuredClone(manifest); m.files[0]!.path = p; return Buffer.from(JSON.stringify(m)) }
  const deep = Buffer.from([...Array(100_000).fill(0x81), 0x00]) // [[[[...0]]]]: nesting far past any stack
  const sha1 = Buffer.from([0x01, 0x55, 0x11, 0x14, ...Array(20).fill(7)])
  const identity = Buffer.from([0x01, 0x55, 0x00, 0x03, 1, 2, 3])
  return {
    safetensors: [
      ['bad-header-length-2p63', safetensorsWith('{}', 2n ** 63n)],
      ['bad-header-longer-than-file', safetensorsWith('{"a":1}', 1_000_000n)],
      ['bad-overlapping-offsets', safetensorsWith('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', undefined, 12)],
      ['bad-shape-overflow', safetensorsWith('{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}', undefined, 8)],
      ['bad-offsets-past-end', safetensorsWith('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', undefined, 4)],
      ['bad-not-json', safetensorsWith('{"a":')],
    ],
    zip: [
      ['bad-entry-count-huge', (() => { const z = Buffer.from(zipFile([{ name: 'a', data: new Uint8Array(4) }])); z.writeUInt16LE(0xffff, z.length - 12); z.writeUInt16LE(0xffff, z.length - 14); return z })()],
      ['bad-name-dotdot', zipFile([{ name: '../../evil', data: new Uint8Array(4) }])],
      ['bad-name-absolute', zipFile([{ name: '/etc/passwd', data: new Uint8Array(4) }])],
      ['bad-cd-offset-past-end', (() => { const z = Buffer.from(zipFile([{ name: 'a', data: new Uint8Array(4) }])); z.writeUInt32LE(0x7fffffff, z.length - 6); return z })()],
    ],
    gguf: [
      ['bad-tensor-count-2p63', (() => { const g = Buffer.from(gguf()); g.writeBigUInt64LE(2n ** 63n, 8); return g })()],
      ['bad-kv-count-huge', (() => { const g = Buffer.from(gguf()); g.writeBigUInt64LE(2n ** 40n, 16); return g })()],
      ['bad-string-length-huge', (() => { const g = Buffer.from(gguf()); g.writeBigUInt64LE(2n ** 62n, 24); return g })()],
      ['bad-truncated', gguf().subarray(0, 40)],
    ],
    npy: [
      ['bad-header-length-huge', Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.from([0xff, 0xff, 0xff, 0x7f])])],
      ['bad-shape-overflow', Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([0x46, 0x00]), Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (9007199254740993, 4), }".padEnd(69, ' ') + '\n')])],
      ['bad-not-a-dict', Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([0x10, 0x00]), Buffer.from('__import__("os")'.padEnd(15, ' ') + '\n')])],
    ],
    pickle: [
      ['bad-reduce-os-system', Buffer.from("\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.", 'latin1')],
      ['bad-reduce-builtins-eval', Buffer.from("\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1;\x85R.", 'latin1')],
      ['bad-stack-underflow', Buffer.from([0x80, 0x02, 0x52, 0x2e])],
      ['bad-no-stop', Buffer.from([0x80, 0x02, 0x7d])],
    ],
    manifest: [
      ['bad-path-dotdot', withPath('../../x')],
      ['bad-path-absolute', withPath('/etc/cron.d/x')],
      ['bad-path-git-hooks', withPath('.git/hooks/post-checkout')],
      ['bad-path-GIT-upper', withPath('.GIT/config')],
      ['bad-path-git-dot', withPath('sub/.git./x')],
      ['bad-path-nul', withPath('a\u0000b')],
      ['bad-path-backslash', withPath('..\\..\\x')],
      ['bad-seal-changed', Buffer.from(manifestText().replace('"seed": 1', '"seed": 2'))],
      ['bad-not-json', Buffer.from('{"zoo": 1, ')],
    ],
    cbor: [
      ['bad-keys-out-of-order', Buffer.from([0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02])],
      ['bad-float16', Buffer.from([0xf9, 0x3c, 0x00])],
      ['bad-undefined', Buffer.from([0xf7])],
      ['bad-length-not-minimal', Buffer.from([0x18, 0x01])],
      ['bad-huge-array-length', Buffer.from([0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
      ['bad-huge-bytes-length', Buffer.from([...cborHead(2, 0x7fffffff)])],
      ['bad-deep-nesting', deep],
      ['bad-indefinite-length', Buffer.from([0x9f, 0x01, 0xff])],
    ],
    node: [
      ['bad-size-not-sum', encodeCanonical({ size: 7, leaf: true, links: [[cidOf(RAW, new Uint8Array([1])), 3]] })],
      ['bad-extra-key', encodeCanonical({ size: 0, leaf: true, links: [], x: 1 })],
      ['bad-wrong-codec-link', encodeCanonical({ size: 3, leaf: true, links: [[cidOf(DAG_CBOR, new Uint8Array([1])), 3]] })],
      ['bad-too-many-links', encodeCanonical({ size: 2000, leaf: true, links: Array.from({ length: 2000 }, () => [cidOf(RAW, new Uint8Array([1])), 1]) })],
    ],
    path: ['../x', '/abs', 'a/../../b', '.git/config', '.GIT/x', 'a/.git/x', '.git./x', '.git /x', 'a\u0000b', 'a\\b', 'C:/x', 'con.txt', 'a//b', './a', ''].map((p, i) => [`bad-${i}`, Buffer.from(p)] as [string, Uint8Array]),
    cid: [
      ['bad-sha1', Buffer.from(CID.decode(sha1).toString())],
      ['bad-identity', Buffer.from(CID.decode(identity).toString())],
      ['bad-cidv0', Buffer.from('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')],
      ['bad-dag-pb-codec', Buffer.from(CID.createV1(0x70, cidOf(RAW, new Uint8Array([1])).multihash).toString())],
    ],
    'cid-bytes': [
      ['bad-sha1', sha1],
      ['bad-identity', identity],
      ['bad-dag-json-codec', Buffer.from(CID.createV1(0x0129, cidOf(RAW, new Uint8Array([1])).multihash).bytes)],
    ],
    'remote-object': [
      ['bad-one-byte-flipped', (() => { const b = Buffer.from(OBJECT); b[3]! ^= 1; return b })()],
      ['bad-one-byte-extra', Buffer.concat([OBJECT, Buffer.from([0])])],
      ['bad-empty', new Uint8Array(0)],
    ],
  }
}

/**
 * Write a target's corpus folder: its known-bad inputs (`bad-*.bin`), the inputs of defects found
 * (`found-*.bin`), and a dozen mutants it refuses (`mutant-*.bin`, drawn from a fixed seed).
 */
export async function writeCorpusOf(t: Target, dir: string, defects: Defect[] = []): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const [name, input] of knownBad()[t.name] ?? []) await writeFile(join(dir, `${name}.bin`), input)
  for (const d of defects) await writeFile(join(dir, `found-${corpusName(d.input)}`), d.input)
  const rng = new Rng(7), seeds = t.seeds()
  let kept = 0
  const accepted: Uint8Array[] = []
  for (let i = 0; i < 4000 && kept < 12; i++) {
    const input = mutate(rng, rng.pick(seeds), seeds)
    if (await feed(t, input)) continue
    try { if (await t.run(input) !== false) { if (accepted.length < 12) accepted.push(input); continue } } catch { /* refused: keep it */ }
    await writeFile(join(dir, `mutant-${corpusName(input)}`), input)
    kept++
  }
  // a reader that never refuses (describeFile falls back to opaque bytes; a listing skips bad names)
  if (kept === 0) for (const input of accepted) await writeFile(join(dir, `mutant-${corpusName(input)}`), input)
}
