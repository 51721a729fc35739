/**
 * gc against every writer, gc's byte accounting, and remote retention (`gc --remote`), through the
 * real CLI, real git (a bare repository as the git remote) and real zoo remotes (a folder, s3rver).
 *
 * The races are not timed: `gc --grace 0` runs in a loop (bounded in count) while a writer process
 * runs, whatever the interleaving; each gc either runs or stops with E_LOCKED, and afterwards
 * `verify` passes and every committed model comes back byte-exact. s3rver accepts its fixed key
 * without modelling real credential checks: no claim about credentials is made here.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { access, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { BIN, git, tempRepo, zoo, type Run } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { encodeNpy } from '../src/demo/data.js'
import { dataset, permModel } from './eval-fixtures.js'

const C = 8 // classes of the eval fixtures' model
import { packEntries, startS3rver, type S3Server } from './remote-servers.js'
import { LocalStore } from '../src/cas/local.js'
import { lockForGc } from '../src/cas/lock.js'
import { processHost } from '../src/host.js'
import { cidOf, RAW } from '../src/cas/cid.js'
import { NotFoundError } from '../src/errors.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false)

/** Random float32 tensors as safetensors: `mib` MiB, unique bytes. */
function weights(mib: number, names = ['w']): Buffer {
  const per = Math.floor((mib * 1024 * 1024) / 4 / names.length)
  return Buffer.from(encodeSafetensors(names.map((name) => {
    const data = new Float32Array(per).map(() => Math.random() - 0.5)
    return { name, dtype: 'F32' as const, shape: [per], data: new Uint8Array(data.buffer) }
  })))
}

/**
 * Run `gc --grace 0` in `cwd` again and again while `writer` runs (at most 40 times, and once more
 * after it ends). Every gc must succeed or stop with E_LOCKED (a writer holds the store), or refuse
 * with exit 1 as `alsoRefused` describes. `ready` is awaited before the first gc (say, a clone's folder appearing).
 */
async function race(cwd: string, writer: Promise<Run>, what: string, ready?: () => Promise<boolean>,
  alsoRefused?: RegExp): Promise<{ writer: Run; ran: number; locked: number; freed: number }> {
  let done: Run | undefined
  const w = writer.then((r) => { done = r; return r })
  if (ready) while (!done && !(await ready())) await new Promise((r) => setTimeout(r, 20))
  let ran = 0; let locked = 0; let after = 0; let freed = 0
  for (let i = 0; i < 40 && after < 1; i++) {
    const wasDone = done !== undefined
    const r = await zoo(cwd, ['gc', '--grace', '0', '--json'], { GIT_ZOO_DEBUG: '1' })
    if (r.code === 0) { ran++; freed += (JSON.parse(r.stdout) as { freed_bytes: number }).freed_bytes } else if (alsoRefused?.test(r.stderr)) {
      assert.equal(r.code, 1, r.stderr)
      locked++
    } else {
      assert.equal(r.code, 3, `gc racing ${what} failed unexpectedly (${r.code}):\n${r.stderr}`)
      assert.match(r.stderr, /^E_LOCKED /m, `gc racing ${what}: ${r.stderr}`)
      locked++
    }
    if (wasDone) after++
  }
  const result = await w
  assert.equal(result.code, 0, `${what} racing gc failed (${result.code}):\n${result.stderr}${result.stdout}`)
  assert.ok(ran >= 1, `gc never ran beside ${what}`)
  return { writer: result, ran, locked, freed }
}

// The three parts run side by side (each is a chain of processes mostly waiting on each other).
describe('teams gc', { concurrency: true }, () => {
/** Start `git zoo <args>`; stderr is readable while it runs. */
function start(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): { done: Promise<Run>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, GIT_ZOO_DEBUG: '', ...env } })
  let out = ''; let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  child.stderr.on('data', (d: Buffer) => { err += d })
  const done = new Promise<Run>((res) => child.on('close', (code) => res({ code: code ?? 1, stdout: out, stderr: err })))
  return { done, stderr: () => err }
}

describe('gc --grace 0 in a loop racing every writer', { concurrency: 1 }, () => {
  let work = ''
  let origin = ''
  let a = ''
  const sources = new Map<string, string>() // model name -> sha256 of its one weights file
  const repos: string[] = []

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'zoo-gcrace-'))
    origin = join(work, 'origin.git')
    await git(work, 'init', '-q', '--bare', '-b', 'main', origin)
    a = (await tempRepo('zoo-gcrace-a-')).dir
    repos.push(a)
    await git(a, 'remote', 'add', 'origin', origin)
    await ok(zoo(a, ['init']), 'init')
    await ok(zoo(a, ['remote', 'add', 'origin', join(work, 'zr')]), 'remote add')
    await writeFile(join(a, '.gitignore'), 'src/\nout/\n')
    await git(a, 'add', '.zoo', '.gitignore')
    await git(a, 'commit', '-q', '-m', 'zoo')
    await mkdir(join(a, 'src'))
  })
  after(async () => {
    for (const r of repos) await rm(r, { recursive: true, force: true })
    await rm(work, { recursive: true, force: true })
  })

  /** Write the model's file, then start `git zoo add` (the returned promise is the running add). */
  async function addModel(repo: string, name: string, bytes: Uint8Array, env: NodeJS.ProcessEnv = {}): Promise<{ run: Promise<Run> }> {
    const dir = join(repo, 'src', name.replace(/\//g, '_'))
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'model.safetensors'), bytes)
    sources.set(name, sha(bytes))
    return { run: zoo(repo, ['add', dir, '--name', name], env) }
  }

  it('add: a promotion racing gc (with garbage from a crashed add to collect)', async () => {
    const crashed = await (await addModel(a, 'race/garbage', weights(2), { GIT_ZOO_CRASH_AT: 'after-flush' })).run
    assert.notEqual(crashed.code, 0)
    sources.delete('race/garbage')
    const r = await race(a, (await addModel(a, 'race/add', weights(3))).run, 'add')
    assert.ok(r.freed > 2 * 1024 * 1024, `the crashed add's pack was freed (${r.freed} bytes)`)
  })

  it('import: a directory of models racing gc', async () => {
    const dir = join(a, 'src', 'pop')
    for (const m of ['m1', 'm2', 'm3']) {
      await mkdir(join(dir, m), { recursive: true })
      const bytes = weights(1)
      await writeFile(join(dir, m, 'model.safetensors'), bytes)
      sources.set(`imp/${m}`, sha(bytes))
    }
    await race(a, zoo(a, ['import', dir, '--layout', 'generic', '--prefix', 'imp']), 'import')
  })

  it('soup: averaging two models racing gc', async () => {
    await ok((await addModel(a, 'race/sa', weights(2, ['a', 'b']))).run, 'add sa')
    await ok((await addModel(a, 'race/sb', weights(2, ['a', 'b']))).run, 'add sb')
    await race(a, zoo(a, ['soup', 'race/sa', 'race/sb', '--name', 'race/soup']), 'soup')
    const out = join(a, 'out', 'soup')
    await ok(zoo(a, ['get', 'race/soup', '--out', out]), 'get soup')
    sources.set('race/soup', sha(await readFile(join(out, 'model.safetensors'))))
  })

  it('eval: an evaluation recorded while gc runs', async () => {
    const dir = join(a, 'src', 'onnx')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'model.onnx'), permModel())
    await ok(zoo(a, ['add', dir, '--name', 'race/onnx']), 'add onnx')
    const { x, y, n } = dataset()
    await writeFile(join(a, 'src', 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(a, 'src', 'd.y.npy'), encodeNpy(y, [n]))
    await race(a, zoo(a, ['eval', 'race/onnx', '--data', 'src/d.x.npy']), 'eval')
    assert.ok((await git(a, 'log', '-1', '--format=%B')).includes('Zoo-Eval-Data'), 'the evaluation was committed')
    await ok(zoo(a, ['push', 'origin']), 'push')
  })

  it('clone: gc on the new clone\'s store while it fetches', async () => {
    const c = join(work, 'c')
    repos.push(c)
    await race(c, zoo(work, ['clone', origin, c]), 'clone', () => exists(join(c, '.git', 'zoo', 'packs')))
  })

  let b = ''
  it('fetch: gc on a lazy clone while fetch fills it', async () => {
    b = join(work, 'b')
    repos.push(b)
    await ok(zoo(work, ['clone', '--lazy', origin, b]), 'clone --lazy')
    await race(b, zoo(b, ['fetch']), 'fetch')
  })

  it('pull: gc while pull brings a new model and its objects', async () => {
    await ok((await addModel(a, 'race/pull', weights(2))).run, 'add pull')
    await ok(zoo(a, ['push', 'origin']), 'push')
    // the full clone (a lazy one pulls no objects). While git merges, a manifest being checked out
    // may be read half-written: gc then refuses (E_GC_UNSAFE) and removes nothing
    const c = join(work, 'c')
    await race(c, zoo(c, ['pull']), 'pull', undefined, /gc stopped before removing anything: a manifest in the work tree cannot be read/)
    assert.ok(await exists(join(c, 'models', 'race', 'pull')))
    await ok(zoo(b, ['pull']), 'pull in the lazy clone')
  })

  it('lazy get: gc while get fetches the objects it needs', async () => {
    const d = join(work, 'd')
    repos.push(d)
    await ok(zoo(work, ['clone', '--lazy', origin, d]), 'clone --lazy')
    const r = await race(d, zoo(d, ['get', 'race/add', '--out', join(work, 'got')]), 'get')
    assert.equal(r.writer.code, 0)
    assert.equal(sha(await readFile(join(work, 'got', 'model.safetensors'))), sources.get('race/add'))
  })

  it('afterwards verify passes in every repository and every committed model is byte-exact', async () => {
    // one model of each race, in every repository that has it (all at once: each get is a process)
    const sample = ['race/add', 'imp/m2', 'race/soup', 'race/pull']
    await Promise.all(repos.map(async (repo, i) => {
      for (const name of sample) {
        if (!(await exists(join(repo, 'models', name)))) continue
        const out = join(work, 'check', `${i}`, name)
        await ok(zoo(repo, ['get', name, '--out', out]), `get ${name} in ${repo}`)
        assert.equal(sha(await readFile(join(out, 'model.safetensors'))), sources.get(name), `${name} in ${repo}`)
      }
      // the lazy clones fetch the rest; verify then checks every object of every model
      await ok(zoo(repo, ['fetch']), `fetch in ${repo}`)
      const v = await zoo(repo, ['verify'])
      assert.equal(v.code, 0, `verify in ${repo}:\n${v.stderr}${v.stdout}`)
    }))
    // every model reached the clones that pulled
    for (const name of sources.keys()) assert.ok(await exists(join(work, 'b', 'models', name)), `${name} in the pulled clone`)
  })
})

describe('store handles and the gc lock (in process, real files)', { concurrency: 1 }, () => {
  it('a handle holds gc off from its first has() until close; one registering during gc forgets what gc removed; a reader follows a rewritten pack', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-gclock-'))
    const host = processHost()
    try {
      const x = randomBytes(5000); const cx = cidOf(RAW, x)
      const y = randomBytes(7000); const cy = cidOf(RAW, y)
      const w = await LocalStore.open(dir, { host })
      await (await lockForGc(host, dir)).release() // opening alone registers nothing
      assert.equal(await w.has(cx), false)
      await assert.rejects(lockForGc(host, dir), /in use by a git zoo command writing to the store \(pid \d+ on /)
      await w.put(cx, x); await w.put(cy, y)
      await w.close()
      const gc = await lockForGc(host, dir) // closed: gc may run
      const reader = await LocalStore.open(dir)
      const late = await LocalStore.open(dir, { host })
      const old = (await reader.locate(cy))!.pack
      // what gc does to a half-dead pack: copy the live object out, then drop the pack
      const rw = await LocalStore.open(dir, { gcLock: gc })
      await rw.putVerified(cy, y, { rewrite: true })
      await rw.flush()
      await rw.removePack(old)
      await rw.close()
      const pending = late.has(cx) // waits for gc
      await gc.release()
      assert.equal(await pending, false, 'the removed pack is forgotten, so x is not claimed present')
      assert.deepEqual(Buffer.from(await reader.get(cy)), y, 'the reader finds y in its new pack')
      await assert.rejects(reader.get(cx), NotFoundError)
      await late.close(); await reader.close()
      await (await lockForGc(host, dir)).release()
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})

describe('gc counts what it really frees', () => {
  it('an orphaned partial pack (add killed before its pack got an index) and a crashed add\'s packs', async () => {
    const { dir, cleanup } = await tempRepo('zoo-gcorphan-')
    try {
      await ok(zoo(dir, ['init']), 'init')
      const packs = join(dir, '.git', 'zoo', 'packs')
      await writeFile(join(dir, 'big.bin'), randomBytes(10 * 1024 * 1024))
      const killed = await zoo(dir, ['add', 'big.bin', '--name', 'orphan/big'], { GIT_ZOO_CRASH_AT: 'before-flush' })
      assert.notEqual(killed.code, 0)
      assert.match(killed.stderr, /crash point before-flush/)
      const names = await readdir(packs)
      const orphan = names.filter((n) => n.endsWith('.pack'))
      assert.equal(orphan.length, 1, names.join(' '))
      assert.equal(names.filter((n) => n.endsWith('.idx')).length, 0)
      const orphanBytes = (await stat(join(packs, orphan[0]!))).size
      assert.ok(orphanBytes >= 8 * 1024 * 1024, `${orphanBytes} bytes written before the kill`)

      // the default grace keeps a young orphan (an add may still be writing it... or not: its pid is gone)
      const young = await ok(zoo(dir, ['gc']), 'gc')
      assert.match(young.stderr, /^gc: freed 0 B \(0 objects\); kept 0 objects$/m)
      assert.ok(await exists(join(packs, orphan[0]!)))

      // --grace 0: removed and counted; the one-line summary prints without a TTY
      const r = await ok(zoo(dir, ['gc', '--grace', '0']), 'gc --grace 0')
      const mib = (orphanBytes / 1024 / 1024).toFixed(1)
      assert.equal(r.stderr, `gc: freed ${mib} MiB (0 objects, 1 orphaned partial pack); kept 0 objects\n`)
      assert.deepEqual((await readdir(packs)).filter((n) => n.endsWith('.pack')), [])

      // a crash after the flush leaves indexed packs no manifest needs: their objects are counted
      const again = await zoo(dir, ['add', 'big.bin', '--name', 'orphan/big'], { GIT_ZOO_CRASH_AT: 'after-flush' })
      assert.notEqual(again.code, 0)
      let onDisk = 0
      for (const n of await readdir(packs)) onDisk += (await stat(join(packs, n))).size
      const dry = JSON.parse((await ok(zoo(dir, ['gc', '--grace', '0', '--dry-run', '--json']), 'dry run')).stdout)
      assert.equal(dry.dry_run, true)
      assert.equal(dry.freed_bytes, onDisk)
      const real = JSON.parse((await ok(zoo(dir, ['gc', '--grace', '0', '--json']), 'gc --json')).stdout)
      assert.equal(real.freed_bytes, onDisk, 'every byte of the dead packs and their indexes')
      assert.ok(real.removed_objects > 0)
      assert.ok(real.removed_bytes > 10 * 1024 * 1024 && real.removed_bytes < onDisk, `${real.removed_bytes} bytes of objects (chunks and nodes)`)
      assert.equal(real.packs_removed, 1)
      assert.equal(real.orphan_packs_removed, 0)
      assert.deepEqual(await readdir(packs), [])
      // the same add then succeeds and verifies
      await ok(zoo(dir, ['add', 'big.bin', '--name', 'orphan/big']), 'add again')
      await ok(zoo(dir, ['verify']), 'verify')
    } finally { await cleanup() }
  })
})

let s3: S3Server | undefined
before(async () => { s3 = await startS3rver('zoo') })
after(async () => { await s3?.close() })

/** Set every file under `dir` to have been written `days` ago. */
async function age(dir: string, days: number): Promise<void> {
  const t = (Date.now() - days * 86400_000) / 1000
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) await utimes(join(e.parentPath, e.name), t, t)
  }
}

interface RemoteKind {
  name: string
  url: (work: string) => string
  env: () => NodeJS.ProcessEnv
  /** Make the remote's objects older than the default grace, where the remote allows it; else gc uses --grace 0. */
  age?: (work: string) => Promise<void>
}
const kinds: RemoteKind[] = [
  { name: 'path', url: (work) => join(work, 'zr'), env: () => ({}), age: (work) => age(join(work, 'zr', 'packs'), 8) },
  // S3 LastModified cannot be set back: past the grace is --grace 0 there
  { name: 's3 (s3rver)', url: (work) => `s3://${s3!.bucket}/${work.split('/').pop()}`, env: () => s3!.env },
]

/** A zoo in a temp repo with a bare `origin` in `work` and a path zoo remote `origin` at `work/zr`; its setup pushed. */
async function zooOnOrigin(work: string, prefix: string): Promise<{ origin: string; dir: string; cleanup: () => Promise<void> }> {
  const origin = join(work, 'origin.git')
  await git(work, 'init', '-q', '--bare', '-b', 'main', origin)
  const { dir, cleanup } = await tempRepo(prefix)
  try {
    await git(dir, 'remote', 'add', 'origin', origin)
    await ok(zoo(dir, ['remote', 'add', 'origin', join(work, 'zr')]), 'remote add')
    await git(dir, 'add', '.zoo'); await git(dir, 'commit', '-q', '-m', 'zoo'); await git(dir, 'push', '-q', 'origin', 'main')
  } catch (err) { await cleanup(); throw err }
  return { origin, dir, cleanup }
}

describe('gc --remote: retention on a zoo remote', { concurrency: kinds.length }, () => {
  for (const kind of kinds) {
    it(`${kind.name}: dead branch removed after the grace, live and young objects kept, a push in progress survives`, async () => {
      const work = await mkdtemp(join(tmpdir(), 'zoo-rgc-'))
      const env = kind.env()
      const origin = join(work, 'origin.git')
      const a = join(work, 'a')
      try {
        await git(work, 'init', '-q', '--bare', '-b', 'main', origin)
        await git(work, 'init', '-q', '-b', 'main', a)
        await git(a, 'config', 'user.name', 'T'); await git(a, 'config', 'user.email', 't@example.invalid'); await git(a, 'config', 'commit.gpgsign', 'false')
        await git(a, 'remote', 'add', 'origin', origin)
        await ok(zoo(a, ['init'], env), 'init')
        await ok(zoo(a, ['remote', 'add', 'origin', kind.url(work)], env), 'remote add')
        await writeFile(join(a, '.gitignore'), '*.safetensors\n')
        await git(a, 'add', '.zoo', '.gitignore'); await git(a, 'commit', '-q', '-m', 'zoo')
        const live = weights(2); const dead = weights(2); const wip = weights(2)
        await writeFile(join(a, 'live.safetensors'), live)
        await ok(zoo(a, ['add', 'live.safetensors', '--name', 'keep/live'], env), 'add live')
        await ok(zoo(a, ['push', 'origin'], env), 'push main')
        await git(a, 'checkout', '-q', '-b', 'feat')
        await writeFile(join(a, 'dead.safetensors'), dead)
        await ok(zoo(a, ['add', 'dead.safetensors', '--name', 'gone/dead'], env), 'add dead')
        await ok(zoo(a, ['push', 'origin', 'feat'], env), 'push feat')
        await git(a, 'checkout', '-q', 'main')
        await git(a, 'push', '-q', '--no-verify', 'origin', '--delete', 'feat')
        await git(a, 'branch', '-q', '-D', 'feat')

        // the default grace (7d) keeps the just-uploaded objects of the deleted branch
        const kept = JSON.parse((await ok(zoo(a, ['gc', '--remote', 'origin', '--json'], env), 'gc --remote')).stdout)
        assert.equal(kept.removed_objects, 0)
        assert.ok(kept.young_objects > 0 && kept.live_objects > 0, JSON.stringify(kept))
        assert.equal(kept.grace_ms, 7 * 24 * 3600 * 1000)
        // dry run, then the real one past the grace
        const dry = await ok(zoo(a, ['gc', '--remote', 'origin', '--grace', '0', '--dry-run'], env), 'dry')
        assert.match(dry.stderr, new RegExp(`^gc --remote origin: would free \\d+\\.\\d MiB \\(${kept.young_objects} objects\\); kept ${kept.live_objects} live objects\\n$`))
        await kind.age?.(work)
        const gone = JSON.parse((await ok(zoo(a, ['gc', '--remote', 'origin', '--json', ...(kind.age ? [] : ['--grace', '0'])], env), 'gc --remote past the grace')).stdout)
        assert.equal(gone.removed_objects, kept.young_objects, 'the deleted branch\'s objects')
        assert.equal(gone.listed_objects - gone.removed_objects, kept.live_objects, 'only the live objects are left')
        assert.ok(gone.freed_bytes > dead.length, `${gone.freed_bytes} bytes freed`)

        // a push in progress: objects uploaded, then killed before git sends the ref
        await git(a, 'checkout', '-q', '-b', 'wip')
        await writeFile(join(a, 'wip.safetensors'), wip)
        await ok(zoo(a, ['add', 'wip.safetensors', '--name', 'work/wip'], env), 'add wip')
        const killed = await zoo(a, ['push', 'origin', 'wip'], { ...env, GIT_ZOO_CRASH_AT: 'push-after-objects' })
        assert.notEqual(killed.code, 0)
        assert.match(killed.stderr, /crash point push-after-objects/)
        assert.equal((await git(origin, 'branch', '--list', 'wip')).trim(), '', 'the ref was not pushed')
        // gc from another clone, which has no wip branch: only the grace protects the push
        const b = join(work, 'b')
        await ok(zoo(work, ['clone', '--lazy', origin, b], env), 'clone b')
        const during = JSON.parse((await ok(zoo(b, ['gc', '--remote', 'origin', '--json'], env), 'gc during push')).stdout)
        assert.equal(during.removed_objects, 0)
        assert.ok(during.young_objects > 0, JSON.stringify(during))
        // the push rerun succeeds, and a fresh clone of wip gets everything
        await ok(zoo(a, ['push', 'origin', 'wip'], env), 'push again')
        const c = join(work, 'c')
        await ok(zoo(work, ['clone', origin, c], env), 'clone c')
        await git(c, 'checkout', '-q', 'wip')
        await ok(zoo(c, ['get', 'work/wip', '--out', join(work, 'out-wip')], env), 'get wip')
        assert.equal(sha(await readFile(join(work, 'out-wip', 'wip.safetensors'))), sha(wip))
        await ok(zoo(c, ['verify'], env), 'verify c') // every object of keep/live and work/wip, against its CID
      } finally {
        await rm(work, { recursive: true, force: true })
      }
    })
  }

  it('an interrupted remote gc leaves no node without its objects: pushing the dead model again restores it', async () => {
    const work = await mkdtemp(join(tmpdir(), 'zoo-rgccrash-'))
    try {
      const { origin, dir, cleanup } = await zooOnOrigin(work, 'zoo-rgccrash-a-')
      try {
        await git(dir, 'checkout', '-q', '-b', 'feat')
        const bytes = weights(2)
        await writeFile(join(dir, 'w.safetensors'), bytes)
        await ok(zoo(dir, ['add', 'w.safetensors', '--name', 'back/again']), 'add')
        await ok(zoo(dir, ['push', 'origin', 'feat']), 'push feat')
        const tip = (await git(dir, 'rev-parse', 'HEAD')).trim()
        const root = (JSON.parse(await readFile(join(dir, 'models/back/again/v1/manifest.json'), 'utf8')) as { files: Array<{ root: string }> }).files[0]!.root
        assert.ok(root.startsWith('bafyrei'), 'the file has a node above its chunks')
        await git(dir, 'checkout', '-q', 'main')
        await git(dir, 'push', '-q', 'origin', '--delete', 'feat')
        await git(dir, 'branch', '-q', '-D', 'feat')
        const killed = await zoo(dir, ['gc', '--remote', 'origin', '--grace', '0'], { GIT_ZOO_CRASH_AT: 'remote-gc-after-nodes' })
        assert.notEqual(killed.code, 0)
        assert.match(killed.stderr, /crash point remote-gc-after-nodes/)
        const left = (await packEntries(join(work, 'zr'))).map((e) => e.cid)
        assert.ok(!left.includes(root), 'the node went first')
        assert.ok(left.some((n) => n.startsWith('bafkrei')), 'its chunks are still there')
        // the model comes back: the push finds its root missing and uploads what is missing below it
        await git(dir, 'branch', 'feat', tip)
        await ok(zoo(dir, ['push', 'origin', 'feat']), 'push feat again')
        const c = join(work, 'c')
        await ok(zoo(work, ['clone', '--lazy', origin, c]), 'clone')
        await git(c, 'checkout', '-q', 'feat')
        await ok(zoo(c, ['get', 'back/again', '--out', join(work, 'out')]), 'get')
        assert.equal(sha(await readFile(join(work, 'out', 'w.safetensors'))), sha(bytes))
        // and the interrupted gc runs again cleanly (its lock was a dead process's)
        await ok(zoo(dir, ['gc', '--remote', 'origin', '--grace', '0']), 'gc again')
      } finally { await cleanup() }
    } finally { await rm(work, { recursive: true, force: true }) }
  })

  it('locks on the remote: a live gc of another host is never stolen, a dead one is; gc and push wait for each other', async () => {
    const work = await mkdtemp(join(tmpdir(), 'zoo-rgclock-'))
    try {
      const { origin, dir, cleanup } = await zooOnOrigin(work, 'zoo-rgclock-a-')
      try {
        const locks = join(work, 'zr', 'locks')
        await mkdir(locks, { recursive: true })
        await writeFile(join(locks, 'gc-other.json'), JSON.stringify({ host: 'elsewhere.invalid', pid: 1, started: Date.now(), what: 'git zoo gc --remote' }))
        const refused = await zoo(dir, ['gc', '--remote', 'origin'], { GIT_ZOO_DEBUG: '1' })
        assert.equal(refused.code, 3)
        assert.match(refused.stderr, /another gc is running on the zoo remote .*pid 1 on elsewhere\.invalid.*locks\/gc-other\.json/)
        assert.match(refused.stderr, /^E_REMOTE_LOCKED /m)
        assert.deepEqual(await readdir(locks), ['gc-other.json'], 'the refused gc removed its own lock, not the other')
        // a lock older than a day is stale; so is one of a dead process on this host
        const old = Date.now() - 25 * 3600 * 1000
        await writeFile(join(locks, 'gc-other.json'), JSON.stringify({ host: 'elsewhere.invalid', pid: 1, started: old, what: 'git zoo gc --remote' }))
        await writeFile(join(locks, 'gc-dead.json'), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 12345, started: Date.now(), what: 'git zoo gc --remote' }))
        await utimes(join(locks, 'gc-other.json'), old / 1000, old / 1000)
        await ok(zoo(dir, ['gc', '--remote', 'origin']), 'gc past stale locks')
        assert.deepEqual(await readdir(locks), [])

        // a push in progress (its lock younger than the grace) stops gc; --grace 0 does not wait for it
        const push = { host: 'elsewhere.invalid', pid: 7, started: Date.now(), what: 'git zoo push' }
        await writeFile(join(locks, 'push-other.json'), JSON.stringify(push))
        const busy = await zoo(dir, ['gc', '--remote', 'origin'], { GIT_ZOO_DEBUG: '1' })
        assert.equal(busy.code, 3)
        assert.match(busy.stderr, /a push is in progress to the zoo remote .*pid 7 on elsewhere\.invalid/)
        assert.match(busy.stderr, /^E_REMOTE_LOCKED /m)
        await ok(zoo(dir, ['gc', '--remote', 'origin', '--grace', '0']), 'gc --grace 0 past a push lock')
        assert.deepEqual(await readdir(locks), ['push-other.json'], 'another host\'s push lock is left alone')
        await rm(join(locks, 'push-other.json'))

        // a push waits while a gc runs, uploading nothing, and goes on when the gc's lock is gone
        await writeFile(join(dir, 'w.safetensors'), weights(1))
        await ok(zoo(dir, ['add', 'w.safetensors', '--name', 'wait/push']), 'add')
        await writeFile(join(locks, 'gc-other.json'), JSON.stringify({ host: 'elsewhere.invalid', pid: 9, started: Date.now(), what: 'git zoo gc --remote' }))
        const p = start(dir, ['push', 'origin'])
        let ended = false
        p.done.then(() => { ended = true }, () => { ended = true })
        while (!ended && !p.stderr().includes('waiting for a gc on the zoo remote')) await new Promise((r) => setTimeout(r, 20))
        assert.match(p.stderr(), /waiting for a gc on the zoo remote .*pid 9 on elsewhere\.invalid/)
        assert.deepEqual((await readdir(join(work, 'zr', 'packs')).catch(() => [] as string[])).filter((n) => n.endsWith('.pack')), [], 'nothing uploaded while gc holds the remote')
        await rm(join(locks, 'gc-other.json'))
        const pushed = await p.done
        assert.equal(pushed.code, 0, pushed.stderr)
        assert.ok((await readdir(join(work, 'zr', 'packs'))).some((n) => n.endsWith('.idx')))
        assert.deepEqual(await readdir(locks), [], 'the push removed its own lock')
        // a static http remote is read-only; a missing git remote is named
        await git(dir, 'config', 'zoo.remote.web.url', 'http://127.0.0.1:9/zoo')
        const ro = await zoo(dir, ['gc', '--remote', 'web', '--git-remote', 'origin'], { GIT_ZOO_DEBUG: '1' })
        assert.equal(ro.code, 3)
        assert.match(ro.stderr, /read-only over HTTP.*git config zoo\.remote\.web\.url/)
        assert.match(ro.stderr, /^E_READ_ONLY /m)
        await git(dir, 'config', 'zoo.remote.backup.url', join(work, 'zr2'))
        const nogit = await zoo(dir, ['gc', '--remote', 'backup'], { GIT_ZOO_DEBUG: '1' })
        assert.equal(nogit.code, 2)
        assert.match(nogit.stderr, /no git remote named backup.*--git-remote/)
        assert.match(nogit.stderr, /^E_NO_GIT_REMOTE /m)
        assert.equal((await zoo(dir, ['gc', '--git-remote', 'origin'])).code, 2)
      } finally { await cleanup() }
    } finally { await rm(work, { recursive: true, force: true }) }
  })
})
})
