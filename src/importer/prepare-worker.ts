/**
 * A worker thread of src/importer/prepare.ts: reads a model folder for the import's plan (readRun),
 * or reads a model's small files and prepares each for the store (prepareBytes: format, chunks,
 * CIDs, sha256), then posts the results back with the files' bytes transferred, not copied. The
 * store itself is written by the main thread only.
 */
import { parentPort } from 'node:worker_threads'
import { openSync, readSync, fstatSync, closeSync } from 'node:fs'
import { prepareBytes, type PreparedBytes } from '../ingest/ingest.js'
import { readRun } from './read-run.js'
import type { ChunkHash } from '../cas/cid.js'

/** The whole file in a buffer of its own (so it can be transferred). */
function readWhole(path: string): Uint8Array {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const out = new Uint8Array(size)
    for (let at = 0; at < size;) {
      const n = readSync(fd, out, at, size - at, at)
      if (n === 0) throw new Error(`${path} shrank while it was read`) // (the main thread reads it again and reports)
      at += n
    }
    return out
  } finally { closeSync(fd) }
}

parentPort!.on('message', (m: { id: number; paths: string[]; chunkHash: ChunkHash } | { id: number; dir: string; nested: string[] }) => {
  void (async () => {
    try {
      if ('dir' in m) { parentPort!.postMessage({ id: m.id, out: await readRun(m.dir, m.nested) }); return }
      const out: PreparedBytes[] = []
      const transfer = new Set<ArrayBuffer>()
      for (const path of m.paths) {
        const bytes = readWhole(path)
        out.push(await prepareBytes(bytes, path, undefined, m.chunkHash))
        transfer.add(bytes.buffer as ArrayBuffer)
      }
      parentPort!.postMessage({ id: m.id, out }, [...transfer])
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: (err as Error).message ?? String(err) })
    }
  })()
})
