/** Walking what manifests reference: file roots -> nodes -> chunks (gc, verify, push, fetch). */
import { CID } from 'multiformats/cid'
import type { Store } from '../cas/store.js'
import type { Manifest } from './manifest.js'
import { fileChunks } from './node.js'
import { checkpointNode, expandManifest } from './checkpoints.js'

/**
 * What of `manifests` a store can reach, for gc of the local store and of a remote: each manifest
 * with its checkpoint node read and only the files whose root `has` finds. A root found nowhere (a
 * lazy clone, a fetch cut short: nodes are stored last) counts as a missing root; so does each file
 * of a checkpoint node found nowhere. The checkpoint nodes read go into `seen` (they are live with
 * what they list), ready for reachableObjects.
 */
export async function presentManifests(manifests: Iterable<Manifest>, store: Store, has: (cid: CID) => Promise<boolean>):
  Promise<{ present: Manifest[]; missingRoots: number; seen: Set<string> }> {
  const present: Manifest[] = []
  const seen = new Set<string>()
  let missingRoots = 0
  for (const m of manifests) {
    const node = checkpointNode(m)
    const absent = node !== undefined && !(await has(node))
    if (absent) missingRoots += m.checkpoints!.files
    const full = absent ? m : await expandManifest(m, store, (c) => seen.add(c.toString()))
    const files = []
    for (const f of full.files) {
      if (await has(CID.parse(f.root))) files.push(f)
      else missingRoots++
    }
    const { checkpoints: _c, ...plain } = full
    present.push({ ...plain, files })
  }
  return { present, missingRoots, seen }
}

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
