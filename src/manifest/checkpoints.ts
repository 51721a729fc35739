/**
 * Checkpoint nodes (manifest format 2, spec/format.md "Checkpoint nodes"): a trajectory's
 * per-checkpoint file entries and per-epoch history live in the store as sealed dag-cbor nodes the
 * manifest links to (`checkpoints.node`), so git holds a small manifest per version.
 *
 * A node is `{ files: [entry, ...], history: [record, ...], more?: [CID, ...] }`: at most
 * CHECKPOINT_PAGE file entries and CHECKPOINT_PAGE history records each. A longer trajectory is
 * paged: the root node holds the first page and `more` links the further pages (same shape, no
 * `more`) in order, at most MAX_PAGES. Entries are the manifest's file entries with `root` as a CID
 * link and an `epoch` each, sorted by epoch then path.
 *
 * `expandManifest` is the one way to read a version's complete file list and history: every reader
 * of `files` or `history` that needs all of them goes through it.
 */
import type { CID } from 'multiformats/cid'
import { cidOf, DAG_CBOR, parseCid } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { FormatError } from '../errors.js'
import * as dagCbor from '@ipld/dag-cbor'
import { encodeCanonical, decodeStrict } from './cbor.js'
import { checkFileEntry, isView, registerView, type BestMap, type CheckpointsLink, type FileEntry, type ManifestBody } from './manifest.js'
import { metricGoal } from './card.js'

/** File entries and history records per node. */
export const CHECKPOINT_PAGE = 1024
/** Pages per trajectory (the root and at most MAX_PAGES - 1 more): over a million checkpoint files. */
export const MAX_PAGES = 1024

export interface Checkpoints { files: FileEntry[]; history: Array<Record<string, number>> }

function bad(cid: CID | string, why: string): never {
  throw new FormatError(`checkpoint node ${cid} is malformed: ${why}`, 'E_NODE', { cid: String(cid) })
}

function encodePage(files: FileEntry[], history: Array<Record<string, number>>, more?: CID[]): { cid: CID; bytes: Uint8Array } {
  const value: Record<string, unknown> = {
    files: files.map((f) => stripUndefined({ ...f, root: parseCid(f.root) })),
    history,
    ...(more && more.length ? { more } : {}),
  }
  const bytes = encodeCanonical(value)
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v
  return out
}

/** The summary a manifest records of a checkpoint list (checked against the node on every read). */
export function summarize(files: FileEntry[]): Omit<CheckpointsLink, 'node'> {
  const epochs = [...new Set(files.map((f) => f.epoch!))].sort((a, b) => a - b)
  return { count: epochs.length, files: files.length, bytes: files.reduce((a, f) => a + f.size, 0), epochs: [epochs[0]!, epochs[epochs.length - 1]!] }
}

/** The best value of every metric over a history (the minimum for losses, metricGoal) and its epoch. */
export function bestOf(history: Array<Record<string, number>>): BestMap {
  const best: BestMap = {}
  history.forEach((h, i) => {
    for (const [k, v] of Object.entries(h)) {
      if (k === 'epoch') continue
      const b = best[k]
      if (b === undefined || (metricGoal(k) === 'max' ? v > b.value : v < b.value)) best[k] = { value: v, epoch: h.epoch ?? i }
    }
  })
  return best
}

/**
 * Build and store the node(s) of a trajectory: `files` are its checkpoint entries (each with an
 * epoch), `history` its per-epoch records. Further pages are put before the root that links them
 * (invariant 2). Returns the manifest's `checkpoints` value.
 */
export async function buildCheckpoints(files: FileEntry[], history: Array<Record<string, number>>, put: (cid: CID, bytes: Uint8Array) => Promise<unknown>): Promise<CheckpointsLink> {
  if (files.length === 0) throw new FormatError('a checkpoint node needs at least one checkpoint file', 'E_NODE')
  const sorted = [...files].sort((a, b) => a.epoch! - b.epoch! || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const pages = Math.max(Math.ceil(sorted.length / CHECKPOINT_PAGE), Math.ceil(history.length / CHECKPOINT_PAGE), 1)
  if (pages > MAX_PAGES) throw new FormatError(`a trajectory of ${sorted.length} checkpoint files and ${history.length} history records needs ${pages} checkpoint pages; at most ${MAX_PAGES} (${MAX_PAGES * CHECKPOINT_PAGE} entries) are supported`, 'E_NODE')
  const page = <T>(list: T[], i: number): T[] => list.slice(i * CHECKPOINT_PAGE, (i + 1) * CHECKPOINT_PAGE)
  const more: CID[] = []
  for (let i = 1; i < pages; i++) {
    const { cid, bytes } = encodePage(page(sorted, i), page(history, i))
    await put(cid, bytes)
    more.push(cid)
  }
  const root = encodePage(page(sorted, 0), page(history, 0), more)
  await put(root.cid, root.bytes)
  return { node: root.cid.toString(), ...summarize(sorted) }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
function isCid(v: unknown): v is CID {
  return typeof v === 'object' && v !== null && (v as { asCID?: unknown }).asCID === v
}

/** Decode and check one page; `root` says whether `more` may appear. */
function decodePage(bytes: Uint8Array, cid: CID, root: boolean, seen: Set<string>): { files: FileEntry[]; history: Array<Record<string, number>>; more: CID[] } {
  const v = decodeStrict<unknown>(bytes, `checkpoint node ${cid}`)
  if (!isObject(v)) bad(cid, 'not a map')
  const keys = Object.keys(v).sort()
  const allowed = root ? ['files', 'history', 'more'] : ['files', 'history']
  if (!keys.includes('files') || !keys.includes('history') || keys.some((k) => !allowed.includes(k))) bad(cid, `unexpected keys ${keys.join(',')}`)
  if (!Array.isArray(v.files) || v.files.length > CHECKPOINT_PAGE) bad(cid, `files is not a list of at most ${CHECKPOINT_PAGE}`)
  if (!Array.isArray(v.history) || v.history.length > CHECKPOINT_PAGE) bad(cid, `history is not a list of at most ${CHECKPOINT_PAGE}`)
  const files: FileEntry[] = []
  for (const raw of v.files as unknown[]) {
    if (!isObject(raw) || !isCid(raw.root)) bad(cid, 'a file entry is not a map with a CID root')
    const f: Record<string, unknown> = { ...raw, root: raw.root.toString() }
    checkFileEntry(f, seen, (what) => bad(cid, what))
    if (f.epoch === undefined) bad(cid, `file ${f.path as string} has no epoch`)
    files.push(f as unknown as FileEntry)
  }
  for (const [i, h] of (v.history as unknown[]).entries()) {
    if (!isObject(h)) bad(cid, `history[${i}] is not a map`)
    for (const [k, x] of Object.entries(h)) if (typeof x !== 'number' || !Number.isFinite(x)) bad(cid, `history[${i}].${k} is not a number`)
  }
  const more = v.more === undefined ? [] : v.more
  if (!Array.isArray(more) || more.length === 0 && v.more !== undefined || more.length >= MAX_PAGES || !more.every((c) => isCid(c) && c.code === DAG_CBOR)) bad(cid, `more is not a non-empty list of at most ${MAX_PAGES - 1} dag-cbor CIDs`)
  return { files, history: v.history as Array<Record<string, number>>, more: more as CID[] }
}

/**
 * Read a manifest's checkpoint node(s) from `store` (every block verified against its CID by the
 * store, strictly decoded, checked) and check them against the manifest's summary. `onNode` sees
 * every node CID (gc, push and verify need them). `taken` holds the case-folded paths of the
 * manifest's own files: a checkpoint path may not repeat one.
 */
export async function readCheckpoints(link: CheckpointsLink, store: Store, opts: { onNode?: (cid: CID) => void; taken?: Iterable<string> } = {}): Promise<Checkpoints> {
  const root = parseCid(link.node)
  const seen = new Set([...(opts.taken ?? [])].map((p) => p.toLowerCase()))
  const first = decodePage(await store.get(root), root, true, seen)
  opts.onNode?.(root)
  const pages = [first]
  for (const c of first.more) {
    pages.push(decodePage(await store.get(c), c, false, seen))
    opts.onNode?.(c)
  }
  return joinPages(link, root, pages)
}

/**
 * Only the history of a checkpoint node, for the catalog (a finding aid, rebuilt from the manifests
 * at will): `get` returns blocks already checked against their CIDs, so the bytes are the sealed
 * ones; the pages are decoded without the strict re-encoding and the per-entry checks (verify and
 * every reader of files do those), and the entries' count, epochs and sizes are still checked
 * against the manifest's summary. Throws E_NODE when they disagree.
 */
export function readHistorySync(link: CheckpointsLink, get: (cid: CID) => Uint8Array): Array<Record<string, number>> {
  const root = parseCid(link.node)
  const history: Array<Record<string, number>> = []
  const epochs = new Set<number>()
  let files = 0, bytes = 0, first = Infinity, last = -Infinity
  const page = (cid: CID, isRoot: boolean): CID[] => {
    const v = dagCbor.decode(get(cid)) as unknown
    if (!isObject(v) || !Array.isArray(v.files) || !Array.isArray(v.history)) bad(cid, 'not { files, history }')
    for (const f of v.files as unknown[]) {
      if (!isObject(f) || !Number.isSafeInteger(f.epoch) || !Number.isSafeInteger(f.size)) bad(cid, 'a file entry has no epoch or size')
      const e = f.epoch as number
      files++; bytes += f.size as number; epochs.add(e)
      if (e < first) first = e
      if (e > last) last = e
    }
    for (const h of v.history as unknown[]) {
      if (!isObject(h) || !Object.values(h).every((x) => typeof x === 'number' && Number.isFinite(x))) bad(cid, 'a history record is not a map of numbers')
      history.push(h as Record<string, number>)
    }
    const more = isRoot && v.more !== undefined ? v.more : []
    if (!Array.isArray(more) || !more.every(isCid)) bad(cid, 'more is not a list of CIDs')
    return more as CID[]
  }
  for (const c of page(root, true)) page(c, false)
  if (files !== link.files || epochs.size !== link.count || bytes !== link.bytes || first !== link.epochs[0] || last !== link.epochs[1]) {
    throw new FormatError(`checkpoint node ${root} does not match the manifest's checkpoints summary`, 'E_NODE', { cid: link.node })
  }
  return history
}

function joinPages(link: CheckpointsLink, root: CID, pages: Array<ReturnType<typeof decodePage>>): Checkpoints {
  const files = pages.flatMap((p) => p.files), history = pages.flatMap((p) => p.history)
  for (let i = 1; i < files.length; i++) {
    const a = files[i - 1]!, b = files[i]!
    if (a.epoch! > b.epoch! || (a.epoch === b.epoch && a.path > b.path)) bad(root, 'file entries are not sorted by epoch then path')
  }
  const s = summarize(files)
  if (files.length === 0 || s.count !== link.count || s.files !== link.files || s.bytes !== link.bytes || s.epochs[0] !== link.epochs[0] || s.epochs[1] !== link.epochs[1]) {
    throw new FormatError(`checkpoint node ${root} does not match the manifest's checkpoints summary (node: ${s.count} checkpoints, ${s.files} files, ${s.bytes} bytes, epochs ${s.epochs.join('-')}; manifest: ${link.count}, ${link.files}, ${link.bytes}, ${link.epochs.join('-')})`, 'E_NODE', { cid: link.node })
  }
  return { files, history }
}

/**
 * The one way to read a version's complete file list and history: a format 1 manifest as it is; a
 * format 2 manifest as a complete view, `files` = its own files then every checkpoint file,
 * `history` from the node. The view seals and serializes as the manifest it came from (sealedOf),
 * so it can be passed to anything that takes a manifest. Nodes come through `store` (a lazy
 * clone's reader fetches them from the zoo remote like any object).
 */
export async function expandManifest<T extends ManifestBody>(m: T, store: Store, onNode?: (cid: CID) => void): Promise<T> {
  if (!m.checkpoints || isView(m)) return m
  const cp = await readCheckpoints(m.checkpoints, store, { ...(onNode ? { onNode } : {}), taken: m.files.map((f) => f.path) })
  return registerView({ ...m, files: [...m.files, ...cp.files], history: cp.history }, m)
}

/** expandManifest over many manifests, in order. */
export async function expandAll<T extends ManifestBody>(manifests: Iterable<T>, store: Store, onNode?: (cid: CID) => void): Promise<T[]> {
  const out: T[] = []
  for (const m of manifests) out.push(await expandManifest(m, store, onNode))
  return out
}

/**
 * What a checkpoint node block links to (its entries' roots and its further pages), for a repair
 * that must store them before the node (invariant 2); undefined when the bytes are not a checkpoint
 * node.
 */
export function checkpointLinks(bytes: Uint8Array): CID[] | undefined {
  let v: unknown
  try { v = dagCbor.decode(bytes) } catch { return undefined }
  if (!isObject(v) || !Array.isArray(v.files) || !Array.isArray(v.history)) return undefined
  const roots = (v.files as unknown[]).map((f) => (isObject(f) ? f.root : undefined)).filter(isCid)
  return [...roots, ...(Array.isArray(v.more) ? v.more.filter(isCid) : [])]
}

/** The checkpoint node CID of a manifest, if it has one. */
export function checkpointNode(m: ManifestBody): CID | undefined {
  return m.checkpoints ? parseCid(m.checkpoints.node) : undefined
}
