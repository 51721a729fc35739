/**
 * Disk full (../shared/RELIABILITY.md, "disk full"; issue 16): a small real tmpfs filled during
 * `add` (the store on it), `fetch` (the store on it) and `get` (the output folder on it). Each
 * command must stop within the time limit (before the fix, `add` of a checkpoint big enough for the
 * worker-thread hasher never returned: the hash pool stayed open when closing the store failed),
 * exit 3 with E_DISK_FULL's message naming the full folder, leave no half-written object under a
 * final name, no temp file, nothing staged and no commit; once the filesystem is grown the same
 * command succeeds and gives the exact bytes. Skipped with a message where tmpfs cannot be mounted.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git } from './cli.js'
import { auditStore, filesUnder, mountTmpfs, must, newZoo, seededBytes, zooTimed, type Tmpfs } from './reliability-kit.js'

/** Over WORKER_THRESHOLD (16 MiB), so add and get hash in worker threads as they do for real checkpoints. */
const MODEL = 20 * 1024 * 1024
const SMALL = 12 // MiB: the full filesystem
const LIMIT = 60_000 // a command still running after this hangs

let work: string
let model: Buffer
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-diskfull-'))
  model = seededBytes(MODEL, 'disk-full')
})
after(async () => { await rm(work, { recursive: true, force: true }) })

async function withTmpfs(t: { skip(msg: string): void }, body: (fs: Tmpfs) => Promise<void>): Promise<void> {
  const fs = await mountTmpfs(SMALL)
  if (typeof fs === 'string') { t.skip(fs); return }
  try { await body(fs) } finally { await fs.close() }
}

function assertDiskFull(r: Awaited<ReturnType<typeof zooTimed>>, folder: string, what: string): void {
  assert.equal(r.timedOut, false, `${what} hung (killed after ${LIMIT / 1000} s):\n${r.stderr}`)
  assert.equal(r.code, 3, `${what}: exit ${r.code}\n${r.stderr}`)
  assert.match(r.stderr, new RegExp(`no space left on the disk holding ${folder.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), r.stderr)
  assert.match(r.stderr, /run the same command again/)
}

describe('disk full', { concurrency: 3 }, () => {
  it('add into a store on a full disk stops with E_DISK_FULL, keeps nothing half-written, commits and stages nothing, then succeeds', async (t) => {
    await withTmpfs(t, async (fs) => {
      const repo = await newZoo(join(work, 'add'))
      await writeFile(join(repo, 'model.bin'), model)
      const store = join(fs.dir, 'store')
      const env = { GIT_ZOO_STORE: store }
      const head = await git(repo, 'rev-parse', 'HEAD')
      const r = await zooTimed(repo, ['add', 'model.bin', '--name', 'big/net'], env, LIMIT)
      assertDiskFull(r, store, 'add')
      assert.equal(await git(repo, 'rev-parse', 'HEAD'), head, 'nothing committed')
      assert.equal(await git(repo, 'diff', '--cached', '--name-only'), '', 'nothing staged')
      assert.deepEqual(await filesUnder(join(repo, 'models')), [], 'no manifest written')
      const audit = await auditStore(store)
      assert.deepEqual({ bad: audit.bad, badIndexes: audit.badIndexes, temps: audit.temps }, { bad: [], badIndexes: [], temps: [] })

      await fs.resize(64)
      await must(zooTimed(repo, ['add', 'model.bin', '--name', 'big/net'], env, LIMIT), 'add once there is room')
      await must(zooTimed(repo, ['verify'], env, LIMIT), 'verify')
      await must(zooTimed(repo, ['get', 'big/net', '--out', join(work, 'add-out')], env, LIMIT), 'get')
      assert.ok(model.equals(await readFile(join(work, 'add-out', 'model.bin'))), 'get gives the exact bytes')
    })
  })

  it('fetch into a store on a full disk stops with E_DISK_FULL, then resumes', async (t) => {
    await withTmpfs(t, async (fs) => {
      const repo = await newZoo(join(work, 'fetch'))
      await git(work, 'init', '-q', '--bare', '-b', 'main', join(work, 'fetch-origin.git'))
      await git(repo, 'remote', 'add', 'origin', join(work, 'fetch-origin.git'))
      await must(zooTimed(repo, ['remote', 'add', 'origin', join(work, 'fetch-objects')]), 'remote add')
      await git(repo, 'commit', '-q', '-am', 'zoo remote')
      await writeFile(join(repo, 'model.bin'), model)
      await must(zooTimed(repo, ['add', 'model.bin', '--name', 'big/net']), 'add')
      await must(zooTimed(repo, ['push']), 'push')
      // the same zoo, its store now on the small disk: fetch fills it
      const store = join(fs.dir, 'store')
      const env = { GIT_ZOO_STORE: store }
      const r = await zooTimed(repo, ['fetch'], env, LIMIT)
      assertDiskFull(r, store, 'fetch')
      const audit = await auditStore(store)
      assert.deepEqual({ bad: audit.bad, badIndexes: audit.badIndexes, temps: audit.temps }, { bad: [], badIndexes: [], temps: [] })

      await fs.resize(64)
      await must(zooTimed(repo, ['fetch'], env, LIMIT), 'fetch once there is room')
      await must(zooTimed(repo, ['verify'], env, LIMIT), 'verify')
    })
  })

  it('get into a full output folder stops with E_DISK_FULL, writes no file and no temp file, then succeeds', async (t) => {
    await withTmpfs(t, async (fs) => {
      const repo = await newZoo(join(work, 'get'))
      await writeFile(join(repo, 'model.bin'), model)
      await must(zooTimed(repo, ['add', 'model.bin', '--name', 'big/net']), 'add')
      const out = join(fs.dir, 'out')
      const r = await zooTimed(repo, ['get', 'big/net', '--out', out], {}, LIMIT)
      assertDiskFull(r, out, 'get')
      assert.deepEqual(await filesUnder(fs.dir), [], 'nothing under a final name, no temp file')

      await fs.resize(64)
      await must(zooTimed(repo, ['get', 'big/net', '--out', out], {}, LIMIT), 'get once there is room')
      assert.ok(model.equals(await readFile(join(out, 'model.bin'))), 'get gives the exact bytes')
    })
  })
})
