/**
 * File DAG nodes: how a file's chunks are listed in the store.
 *
 * A file's root is either the raw CID of its only chunk (a file that is one chunk), or the dag-cbor
 * CID of a node `{ size, leaf, links: [[cid, size], ...] }`: `leaf` true means the links are raw
 * chunks, false means they are child nodes; `size` is the byte count of the whole subtree. Nodes hold
 * at most MAX_LINKS links, so a 100 GiB file of 1 MiB chunks needs two levels.
 *
 * A leaf whose chunks are named by BLAKE3 carries a fourth key, `hash: "blake3"`, and only such a
 * leaf does: git-zoo versions from before BLAKE3 chunks accept a node only when its keys are exactly
 * `leaf,links,size`, so they refuse these leaves (E_NODE; their gc then stops before removing
 * anything) instead of reading their links as chunks they do not know and deleting them
 * (spec/format.md, "Older versions"). Branch nodes and sha2-256 leaves are byte-identical to those
 * older versions wrote. A leaf mixing the two hashes is never written and never accepted.
 */
import type { CID } from 'multiformats/cid'
import { BLAKE3, checkCidForm, cidOf, DAG_CBOR, RAW } from '../cas/cid.js'
import { encodeCanonical, decodeStrict } from './cbor.js'
import { FormatError } from '../errors.js'
import type { Store } from '../cas/store.js'

export const MAX_LINKS = 1024

export interface FileNode { size: number; leaf: boolean; links: Array<[CID, number]> }

/** The value of the `hash` key a leaf of BLAKE3 chunks carries. */
export const BLAKE3_LEAF_MARK = 'blake3'

/** How many of `links` are named by BLAKE3. */
function blake3Links(links: Array<[CID, number]>): number {
  let n = 0
  for (const [c] of links) if (c.multihash.code === BLAKE3) n++
  return n
}

/**
 * The canonical bytes and CID of a node. A leaf of BLAKE3 chunks gets `hash: "blake3"`; a leaf
 * mixing BLAKE3 and sha2-256 chunks is refused (E_NODE): one add names all its chunks by one hash.
 */
export function encodeNode(node: FileNode): { cid: CID, bytes: Uint8Array } {
  const b3 = node.leaf ? blake3Links(node.links) : 0
  if (b3 !== 0 && b3 !== node.links.length) {
    throw new FormatError(`a leaf node cannot mix BLAKE3 and sha2-256 chunks (${b3} of ${node.links.length} are BLAKE3)`, 'E_NODE', {})
  }
  const bytes = encodeCanonical(b3 > 0
    ? { hash: BLAKE3_LEAF_MARK, size: node.size, leaf: true, links: node.links }
    : { size: node.size, leaf: node.leaf, links: node.links })
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

export function decodeNode(bytes: Uint8Array, cid: CID): FileNode {
  const v = decodeStrict<Record<string, unknown>>(bytes, `node ${cid}`)
  const bad = (why: string): never => { throw new FormatError(`node ${cid} is malformed: ${why}`, 'E_NODE', { cid: String(cid) }) }
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad('not a map')
  const keys = Object.keys(v).sort().join(',')
  const marked = keys === 'hash,leaf,links,size'
  if (keys !== 'leaf,links,size' && !marked) bad(`unexpected keys ${keys}`)
  if (marked && v.hash !== BLAKE3_LEAF_MARK) bad(`hash is ${JSON.stringify(v.hash)}, not "${BLAKE3_LEAF_MARK}"`)
  if (marked && v.leaf !== true) bad('a branch node carries a hash marker')
  if (typeof v.leaf !== 'boolean') bad('leaf is not a boolean')
  if (!Number.isSafeInteger(v.size) || (v.size as number) < 0) bad('size is not a non-negative integer')
  if (!Array.isArray(v.links) || v.links.length > MAX_LINKS) bad('links is not a list of at most 1024')
  let total = 0
  for (const l of v.links as unknown[]) {
    if (!Array.isArray(l) || l.length !== 2 || !Number.isSafeInteger(l[1]) || l[1] < 0) bad('a link is not [cid, size]')
    const link = (l as unknown[])[0] as CID
    if (!link || typeof link !== 'object' || (link as { asCID?: unknown }).asCID !== link) bad('a link is not a CID')
    if (v.leaf ? link.code !== RAW : link.code !== DAG_CBOR) bad(`link ${link} has the wrong codec for a ${v.leaf ? 'leaf' : 'branch'} node`)
    try { checkCidForm(link) } catch (err) { bad((err as Error).message) }
    total += (l as [CID, number])[1]
  }
  if (total !== v.size) bad(`size ${v.size} is not the sum of its links (${total})`)
  const links = v.links as Array<[CID, number]>
  const b3 = blake3Links(links)
  if (marked && b3 !== links.length) bad(`it is marked hash "${BLAKE3_LEAF_MARK}" but ${links.length - b3} of its ${links.length} links are not BLAKE3 chunks`)
  if (!marked && b3 > 0) bad(`${b3} of its ${links.length} links are BLAKE3 chunks but it lacks the hash "${BLAKE3_LEAF_MARK}" marker`)
  if (marked && links.length === 0) bad(`it is marked hash "${BLAKE3_LEAF_MARK}" but has no links`)
  return { size: v.size as number, leaf: v.leaf as boolean, links }
}

/**
 * Build the node tree over a file's chunk list, putting each node into the store (children before
 * parents: invariant 2). Returns the root CID.
 */
export async function buildTree(chunks: Array<[CID, number]>, put: (cid: CID, bytes: Uint8Array) => Promise<unknown>): Promise<CID> {
  if (chunks.length === 1) return chunks[0]![0]
  let level: Array<[CID, number]> = chunks
  let leaf = true
  do {
    const next: Array<[CID, number]> = []
    for (let i = 0; i < level.length || (i === 0 && level.length === 0); i += MAX_LINKS) {
      const links = level.slice(i, i + MAX_LINKS)
      const size = links.reduce((a, [, s]) => a + s, 0)
      const { cid, bytes } = encodeNode({ size, leaf, links })
      await put(cid, bytes)
      next.push([cid, size])
    }
    level = next
    leaf = false
  } while (level.length > 1)
  return level[0]![0]
}

/**
 * The chunks of a file in order, walking its tree (nodes verified and strictly decoded).
 * `onNode` sees every node CID (gc, push and verify need them too).
 */
export async function* fileChunks(root: CID, store: Store, onNode?: (cid: CID) => void): AsyncGenerator<[CID, number]> {
  if (root.code === RAW) { yield [root, -1]; return }
  const node = decodeNode(await store.get(root), root)
  onNode?.(root)
  if (node.leaf) { yield* node.links; return }
  for (const [child] of node.links) yield* fileChunks(child, store, onNode)
}
