import { open, rename, rm, lstat, mkdir } from 'node:fs/promises'
import { resolve, join, dirname, sep } from 'node:path'
import { CID } from 'multiformats/cid'
import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, Progress } from '../output.js'
import { Repo } from '../../repo.js'
import { fileChunks } from '../../manifest/node.js'
import { checkRelPath } from '../../manifest/names.js'
import { checkSeal, type Manifest } from '../../manifest/manifest.js'
import { CheckError, CorruptObjectError, UsageError } from '../../errors.js'
import type { Store } from '../../cas/store.js'
import { tempName, fsyncDir } from '../../cas/atomic.js'
import { LocalStore } from '../../cas/local.js'
import { verifyObject } from '../../remote/verify.js'
import { HashPool, inlineStreamHasher } from '../../cas/hash-pool.js'
import { WORKER_THRESHOLD } from '../../cas/ingest.js'

/** Refuse when any existing component from `base` (exclusive) down to `target` is a symlink. */
async function checkNoSymlinks(base: string, target: string): Promise<void> {
  const rel = target.slice(base.length + 1).split(sep)
  let cur = base
  for (const seg of rel) {
    cur = join(cur, seg)
    let st
    try { st = await lstat(cur) } catch { return } // nothing there yet: nothing to follow
    if (st.isSymbolicLink()) throw new CheckError(`refusing to write through the symbolic link ${cur}; remove it or choose another --out folder`, 'E_SYMLINK', { path: cur })
  }
}

export interface WrittenFile { path: string; size: number; sha256: string; target: string }

/**
 * Write all of a manifest's files under `outDir`: each is streamed into a temp file beside its
 * target with every chunk verified, its size and sha256 checked, fsynced; only when every file is
 * complete are they renamed into place, so a damaged model writes nothing.
 */
export async function writeModelFiles(m: Manifest, store: Store, outDir: string, onBytes?: (n: number) => void,
                                      only?: (path: string) => boolean): Promise<WrittenFile[]> {
  const seal = checkSeal(m)
  if (!seal.ok) throw new CheckError(`model ${m.name}@v${m.version}: its manifest does not match its seal (recorded ${m.seal}, content gives ${seal.expected}); it was modified after sealing: run \`git zoo verify\``, 'E_SEAL_MISMATCH')
  const base = resolve(outDir)
  const total = m.files.reduce((a, f) => a + f.size, 0)
  const pool = total >= WORKER_THRESHOLD && store instanceof LocalStore ? new HashPool() : null
  const temps: Array<{ tmp: string; target: string }> = []
  const createdDirs: string[] = []
  let renamed = 0
  const out: WrittenFile[] = []
  try {
    for (const f of m.files) {
      if (only && !only(f.path)) continue
      checkRelPath(f.path)
      const target = resolve(base, f.path)
      if (!target.startsWith(base + sep)) throw new CheckError(`file path ${f.path} escapes the output folder`, 'E_BAD_PATH')
      await checkNoSymlinks(dirname(base), target)
      const made = await mkdir(dirname(target), { recursive: true })
      if (made) createdDirs.push(made)
      await checkNoSymlinks(dirname(base), target)
      const tmp = tempName(target)
      const fd = await open(tmp, 'wx', 0o644)
      temps.push({ tmp, target })
      const whole = pool ? pool.streamHasher() : inlineStreamHasher()
      let size = 0
      try {
        // chunks are read and verified a bounded number ahead of the writer, in worker threads
        const ahead: Array<Promise<Uint8Array>> = []
        const hashing: Array<Promise<void>> = []
        const writeNext = async (): Promise<void> => {
          const bytes = await ahead.shift()!
          hashing.push(whole.update(bytes))
          if (hashing.length > 8) await hashing.shift()
          size += bytes.length
          let done = 0
          while (done < bytes.length) done += (await fd.write(bytes, done, bytes.length - done, null)).bytesWritten
          onBytes?.(bytes.length)
        }
        try {
          for await (const [cid] of fileChunks(CID.parse(f.root), store)) {
            const next = readVerified(store, cid, pool)
            next.catch(() => {}) // handled when its turn comes; never an unhandled rejection meanwhile
            ahead.push(next)
            if (ahead.length >= 16) await writeNext()
            if (size > f.size) break
          }
          while (ahead.length && size <= f.size) await writeNext()
          await Promise.all(hashing)
        } finally { await Promise.allSettled([...ahead, ...hashing]) }
        await fd.sync()
      } finally { await fd.close() }
      const sha256 = await whole.digest()
      if (size !== f.size || sha256 !== f.sha256) {
        throw new CorruptObjectError(`model ${m.name}@v${m.version} file ${f.path}: the chunks give ${size} bytes with sha256 ${sha256}, the manifest says ${f.size} bytes with ${f.sha256}`, { model: m.name, path: f.path, object: f.root })
      }
      out.push({ path: f.path, size, sha256, target })
    }
    for (const t of temps) { await checkNoSymlinks(dirname(base), t.target); await rename(t.tmp, t.target); renamed++; await fsyncDir(dirname(t.target)) }
    temps.length = 0
    createdDirs.length = 0
    return out
  } finally {
    for (const t of temps) await rm(t.tmp, { force: true })
    // folders this call created stay only if the model was written
    if (renamed === 0) for (const d of createdDirs.reverse()) await rm(d, { recursive: true, force: true })
    await pool?.close()
  }
}

/** An object's bytes, checked against its CID (hashed in the pool when there is one). */
async function readVerified(store: Store, cid: CID, pool: HashPool | null): Promise<Uint8Array> {
  if (!pool || !(store instanceof LocalStore)) return store.get(cid)
  const bytes = await store.readUnverified(cid)
  await verifyObject(cid, bytes, store.location, (b) => pool.hash(b))
  return bytes
}

export const command: Command = {
  summary: 'write a model\'s files, every byte verified',
  help: `usage: git zoo get <model>[@vN] [--out <dir>] [--json]

Write a model version's files byte-exact from the object store. Every chunk is checked against its
CID and every file against its size and sha256 before anything is renamed into place; a damaged
or missing object writes nothing. Paths never escape the output folder and a symbolic link already
in it is never written through. <model> may also be a seal CID.

flags:
  --out <dir>           where to write (default: ./<model name with / as folders>)
  --checkpoint <epoch>  only the files of that epoch's checkpoint (trajectories)
  --json                print { name, version, seal, out, files: [{ path, size, sha256 }] }

examples:
  git zoo get resnet18/cifar10            # latest version into ./resnet18/cifar10/
  git zoo get resnet18/cifar10@v2 --out /tmp/r18
`,
  flags: { out: { type: 'string', value: 'dir' }, checkpoint: { type: 'string', value: 'epoch' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo get <model>[@vN]', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io.env)
    const m = await repo.resolve(args.positional[0]!)
    const outDir = resolve(io.cwd, str(args, 'out') ?? m.name)
    const cp = str(args, 'checkpoint')
    let only: ((p: string) => boolean) | undefined
    if (cp !== undefined) {
      if (!/^\d+$/.test(cp)) throw new UsageError('--checkpoint takes an epoch number', 'E_USAGE')
      const epoch = Number(cp)
      const have = [...new Set(m.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch))]
      if (!have.includes(epoch)) throw new UsageError(`model ${m.name}@v${m.version} has no checkpoint for epoch ${epoch}${have.length ? ` (it has ${have.join(', ')})` : ' (it holds no trajectory)'}`, 'E_USAGE')
      only = (p) => m.files.find((f) => f.path === p)?.epoch === epoch
    }
    // a lazy clone fetches what this model needs from the zoo remote first
    const { ensureObjects } = await import('../../remote/sync.js')
    await ensureObjects(repo, [m])
    const store = await repo.openStore()
    const total = m.files.reduce((a, f) => a + f.size, 0)
    const progress = new Progress(io, 'get', total)
    let done = 0
    try {
      const files = await writeModelFiles(m, store, outDir, (n) => { done += n; progress.update(done) }, only)
      progress.done()
      if (bool(args, 'json')) printJson(io, { name: m.name, version: m.version, seal: m.seal, out: outDir, files: files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) })
    } finally { await store.close() }
    return 0
  },
}
