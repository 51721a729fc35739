/** Walking what manifests reference: file roots -> nodes -> chunks (gc, verify, push, fetch). */
import { CID } from 'multiformats/cid'
import type { Store } from '../cas/store.js'
import type { Manifest } from './manifest.js'
import { fileChunks } from './node.js'
import { expandManifest } from './checkpoints.js'

/**
 * Every object a set of manifests needs, each once: checkpoint nodes and file nodes are read from
 * `store` (so they must be there and valid; a missing or damaged node throws), chunks are listed
 * without being read.
 */
export async function reachableObjects(manifests: Iterable<Manifest>, store: Store, seen = new Set<string>()): Promise<Set<string>> {
  for (const sealed of manifests) {
    const m = await expandManifest(sealed, store, (node) => seen.add(node.toString()))
    for (const f of m.files) {
      if (seen.has(f.root)) continue
      const root = CID.parse(f.root)
      seen.add(f.root)
      for await (const [chunk] of fileChunks(root, store, (node) => seen.add(node.toString()))) seen.add(chunk.toString())
    }
  }
  return seen
}
