/**
 * Reading file nodes fast, for the data paths that walk every node of a file (get, verify).
 *
 * A node's integrity is its CID: the store checks the node's bytes against it before they reach
 * here. What is left is reading the links. The general decoder (decodeNode: dag-cbor decode, then a
 * re-encode to prove canonical form) costs ~6 ms per 1,024-link node; this reader accepts exactly
 * the canonical bytes encodeNode writes (src/manifest/node.ts: `{ leaf, size, links }` in dag-cbor's
 * key order, minimal integer and length forms, CIDv1 links: dag-cbor + sha2-256 in branch nodes,
 * raw + sha2-256 or raw + blake3 in leaf nodes) in one pass, and answers null
 * for anything else, so the caller falls back to decodeNode and its precise error. Both accept the
 * same nodes: a node this reader takes is canonical by construction.
 */
import { CID } from 'multiformats/cid'
import { BLAKE3, DAG_CBOR, RAW, SHA2_256 } from '../cas/cid.js'
import { decodeNode, MAX_LINKS, type FileNode } from '../manifest/node.js'
import type { Store } from '../cas/store.js'

// "leaf", "size", "links" as dag-cbor text strings, in canonical key order (length, then bytes)
const LEAF_KEY = [0x64, 0x6c, 0x65, 0x61, 0x66]
const SIZE_KEY = [0x64, 0x73, 0x69, 0x7a, 0x65]
const LINKS_KEY = [0x65, 0x6c, 0x69, 0x6e, 0x6b, 0x73]

/** The node in `bytes` when they are exactly encodeNode's canonical form; null otherwise. */
export function readFileNodeFast(bytes: Uint8Array): FileNode | null {
  let p = 0
  const n = bytes.length
  const expect = (seq: number[]): boolean => {
    if (p + seq.length > n) return false
    for (let i = 0; i < seq.length; i++) if (bytes[p + i] !== seq[i]) return false
    p += seq.length
    return true
  }
  // a minimal-form unsigned integer of major type `major`; -1 when absent or not minimal
  const uint = (major: number): number => {
    if (p >= n || bytes[p]! >> 5 !== major) return -1
    const info = bytes[p++]! & 31
    if (info < 24) return info
    if (info === 24) { if (p + 1 > n) return -1; const v = bytes[p]!; p += 1; return v >= 24 ? v : -1 }
    if (info === 25) { if (p + 2 > n) return -1; const v = bytes[p]! * 256 + bytes[p + 1]!; p += 2; return v >= 256 ? v : -1 }
    if (info === 26) { if (p + 4 > n) return -1; const v = ((bytes[p]! << 24) >>> 0) + (bytes[p + 1]! << 16) + (bytes[p + 2]! << 8) + bytes[p + 3]!; p += 4; return v >= 65536 ? v : -1 }
    if (info === 27) {
      if (p + 8 > n) return -1
      const hi = ((bytes[p]! << 24) >>> 0) + (bytes[p + 1]! << 16) + (bytes[p + 2]! << 8) + bytes[p + 3]!
      const lo = ((bytes[p + 4]! << 24) >>> 0) + (bytes[p + 5]! << 16) + (bytes[p + 6]! << 8) + bytes[p + 7]!
      p += 8
      const v = hi * 2 ** 32 + lo
      return hi > 0 && Number.isSafeInteger(v) ? v : -1
    }
    return -1
  }
  if (!expect([0xa3]) || !expect(LEAF_KEY)) return null
  const flag = bytes[p++]
  if (flag !== 0xf5 && flag !== 0xf4) return null
  const leaf = flag === 0xf5
  if (!expect(SIZE_KEY)) return null
  const size = uint(0)
  if (size < 0 || !expect(LINKS_KEY)) return null
  const count = uint(4)
  if (count < 0 || count > MAX_LINKS) return null
  const codec = leaf ? RAW : DAG_CBOR
  // each link: [tag 42 (bytes: 0x00, CIDv1 <codec> <multihash> 32-byte digest), size]; the multihash
  // is sha2-256, or for a leaf's raw chunks blake3 (a zoo's chunk_hash, spec/format.md)
  const link = [0x82, 0xd8, 0x2a, 0x58, 37, 0x00, 0x01, codec]
  const links: Array<[CID, number]> = []
  let total = 0
  for (let i = 0; i < count; i++) {
    if (!expect(link) || p + 34 > n) return null
    const mh = bytes[p]
    if (!(mh === SHA2_256 || (leaf && mh === BLAKE3)) || bytes[p + 1] !== 32) return null
    p += 2
    const cid = CID.decode(bytes.subarray(p - 4, p + 32))
    p += 32
    const len = uint(0)
    if (len < 0) return null
    total += len
    links.push([cid, len])
  }
  if (p !== n || total !== size) return null
  return { size, leaf, links }
}

/** The node `cid` from `store` (its bytes checked against the CID by the store); FormatError when malformed. */
export async function readFileNode(store: Store, cid: CID): Promise<FileNode> {
  const bytes = await store.get(cid)
  return readFileNodeFast(bytes) ?? decodeNode(bytes, cid)
}

/**
 * The chunks of a file in order, walking its tree: fileChunks (src/manifest/node.ts) with the fast
 * node reader. Sizes are the links' sizes (-1 for a file that is one raw chunk).
 */
export async function* fileChunksFast(root: CID, store: Store): AsyncGenerator<[CID, number]> {
  if (root.code === RAW) { yield [root, -1]; return }
  const node = await readFileNode(store, root)
  if (node.leaf) { yield* node.links; return }
  for (const [child] of node.links) yield* fileChunksFast(child, store)
}

/**
 * The multihash code (SHA2_256 or BLAKE3) of the first chunk of the file `root`: the hash its chunks
 * were named with when it was added (a file's chunks all share one). Reads the nodes down the
 * tree's left edge only.
 */
export async function firstChunkHash(root: CID, store: Store): Promise<number> {
  let cid = root
  while (cid.code !== RAW) {
    const node = await readFileNode(store, cid)
    const first = node.links[0]
    if (!first) return SHA2_256 // an empty file: nothing to hash
    cid = first[0]
  }
  return cid.multihash.code
}
