/**
 * File DAG nodes: how a file's chunks are listed in the store.
 *
 * A file's root is either the raw CID of its only chunk (a file that is one chunk), or the dag-cbor
 * CID of a node `{ size, leaf, links: [[cid, size], ...] }`: `leaf` true means the links are raw
 * chunks, false means they are child nodes; `size` is the byte count of the whole subtree. Nodes hold
 * at most MAX_LINKS links, so a 100 GiB file of 1 MiB chunks needs two levels.
 */
import type { CID } from 'multiformats/cid'
import { checkCidForm, cidOf, DAG_CBOR, RAW } from '../cas/cid.js'
import { encodeCanonical, decodeStrict } from './cbor.js'
import { FormatError } from '../errors.js'
import type { Store } from '../cas/store.js'

export const MAX_LINKS = 1024

export interface FileNode { size: number; leaf: boolean; links: Array<[CID, number]> }

export function encodeNode(node: FileNode): { cid: CID, bytes: Uint8Array } {
  const bytes = encodeCanonical({ size: node.size, leaf: node.leaf, links: node.links })
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

export function decodeNode(bytes: Uint8Array, cid: CID): FileNode {
  const v = decodeStrict<Record<string, unknown>>(bytes, `node ${cid}`)
  const bad = (why: string): never => { throw new FormatError(`node ${cid} is malformed: ${why}`, 'E_NODE', { cid: String(cid) }) }
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad('not a map')
  const keys = Object.keys(v).sort().join(',')
  if (keys !== 'leaf,links,size') bad(`unexpected keys ${keys}`)
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
  return v as unknown as FileNode
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
