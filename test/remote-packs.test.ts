/**
 * Packs on zoo remotes (spec/remotes.md, "Packs"), through the real CLI, real git, a real static
 * web server honouring Range requests and s3rver, all on 127.0.0.1:
 * - the Store conformance suite on the packed store of every remote kind;
 * - a lazy get reads byte ranges of packs and moves at most 1.1x the bytes it needs (counted by the servers);
 * - a crash half way through writing a pack, and between a pack and its index: nothing half-written
 *   under a final name, the rerun succeeds, gc removes the leftovers;
 * - a damaged pack index is rebuilt from its pack;
 * - two pushers at once lose nothing (pack names by content hash, one index per pack, packs.txt);
 * - a remote written in the loose layout (layout 1) is read, migrated, then read again.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { access, mkdtemp, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, processCtx, zoo, type Run } from './cli.js'
import { storeConformance } from './store-conformance.js'
import { damageInPack, packEntries, startS3rver, startStaticServer, type S3Server } from './remote-servers.js'
import { openRemote } from '../src/remote/index.js'
import { LAYOUT_FILE, PACK_LIST, type PackedStore } from '../src/remote/packed.js'
import { encodeIndex, parseIndex } from '../src/cas/local.js'
import { cidOf, RAW } from '../src/cas/cid.js'
import { PathStore } from '../src/remote/path.js'
import { S3Store } from '../src/remote/s3.js'
import { syncFiles } from '../src/remote/dag.js'
import { Repo } from '../src/repo.js'
import { TransferSide } from '../src/remote/sync.js'

const MiB = 1024 * 1024
let s3: S3Server
before(async () => { s3 = await startS3rver('packs') })
after(async () => { await s3.close() })

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`)
  return r
}
const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false)
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

// ---- the conformance suite on the packed store of each kind ----

storeConformance('packed path remote', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-conf-'))
  const store = openRemote(dir, {})
  return {
    store,
    reopen: async () => openRemote(dir, {}),
    damage: (cid, bytes) => damageInPack(openRemote(dir, {}), cid, bytes),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
})

storeConformance('packed http remote (static server without listings: packs.txt)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-conf-http-'))
  const server = await startStaticServer(dir, { listings: false })
  const store = openRemote(server.url, {})
  const writer = (): PackedStore => openRemote(dir, {})
  return {
    store,
    reopen: async () => openRemote(server.url, {}),
    damage: (cid, bytes) => damageInPack(writer(), cid, bytes),
    seed: async (cid, bytes) => { const w = writer(); await w.put(cid, bytes); await w.close(); await store.refresh() },
    cleanup: async () => { await server.close(); await rm(dir, { recursive: true, force: true }) },
  }
})

let prefixes = 0
storeConformance('packed s3 remote (s3rver)', async () => {
  const url = `s3://${s3.bucket}/conf${++prefixes}`
  return {
    store: openRemote(url, s3.env),
    reopen: async () => openRemote(url, s3.env),
    damage: (cid, bytes) => damageInPack(openRemote(url, s3.env), cid, bytes),
    cleanup: async () => {},
  }
})

describe('packed remotes: refusals', () => {
  it('an index entry longer than an object may be is refused before anything is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-huge-'))
    try {
      const bytes = randomBytes(1000)
      const cid = cidOf(RAW, bytes)
      const w = openRemote(dir, {}); await w.put(cid, bytes); await w.close()
      const idx = (await filesIn(join(dir, 'packs'))).find((n) => n.endsWith('.idx'))!
      const entries = parseIndex(await readFile(join(dir, 'packs', idx)), idx)
      entries[0] = [entries[0]![0], entries[0]![1], 2 ** 32 - 1]
      await unlink(join(dir, 'packs', idx)); await writeFile(join(dir, 'packs', idx), encodeIndex(entries))
      const r = openRemote(dir, {})
      await assert.rejects(r.get(cid), (err: Error & { code?: string }) => err.code === 'E_CORRUPT_OBJECT' && /over the 16777216-byte limit/.test(err.message))
      await r.close()
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('a layout this git-zoo does not know is refused by name (E_REMOTE_LAYOUT)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-layout-'))
    try {
      await writeFile(join(dir, LAYOUT_FILE), JSON.stringify({ format: 'git-zoo remote', layout: 9 }))
      const bytes = randomBytes(100)
      const r = openRemote(dir, {})
      await assert.rejects(r.has(cidOf(RAW, bytes)), (err: Error & { code?: string }) => err.code === 'E_REMOTE_LAYOUT'
        && err.message.includes('layout 9') && err.message.includes(dir) && err.message.includes('upgrade git-zoo'))
      await r.close()
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('a zoo-remote.json that is not a record (empty, cut short) is refused as damaged, not as a newer layout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-layout-'))
    try {
      const bytes = randomBytes(100)
      for (const body of ['', '{"format": "git-zoo re', 'null', '[2]']) {
        await writeFile(join(dir, LAYOUT_FILE), body)
        const r = openRemote(dir, {})
        await assert.rejects(r.has(cidOf(RAW, bytes)), (err: Error & { code?: string }) => err.code === 'E_REMOTE_LAYOUT'
          && err.message.includes(`damaged ${LAYOUT_FILE} (${Buffer.byteLength(body)} bytes`) && err.message.includes(dir)
          && err.message.includes('git zoo remote migrate') && !err.message.includes('upgrade git-zoo'))
        await r.close()
      }
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('refuses a web server that ignores Range (it would send whole packs), naming the remote', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packs-norange-'))
    const server = await startStaticServer(dir, {
      intercept: async (req, res) => {
        if (!req.url?.endsWith('.pack')) return false
        const body = await readFile(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)))
        res.writeHead(200, { 'content-length': body.length }).end(body)
        return true
      },
    })
    try {
      const bytes = randomBytes(5000)
      const cid = cidOf(RAW, bytes)
      const w = openRemote(dir, {}); await w.put(cid, bytes); await w.close()
      const r = openRemote(server.url, {})
      await assert.rejects(r.get(cid), (err: Error & { code?: string }) => err.code === 'E_REMOTE_HTTP'
        && err.message.includes('does not serve byte ranges') && err.message.includes(server.url))
      await r.close()
    } finally { await server.close(); await rm(dir, { recursive: true, force: true }) }
  })
})

// ---- through the CLI ----

interface Zoo { work: string; origin: string; a: string; objects: string }

/** A bare git origin, a clone `a` with a path zoo remote `objects` (committed as `url`, default the folder). */
async function setup(prefix: string, url?: (objects: string) => string): Promise<Zoo> {
  const work = await mkdtemp(join(tmpdir(), prefix))
  const origin = join(work, 'origin.git')
  const a = join(work, 'a')
  const objects = join(work, 'objects')
  await git(work, 'init', '-q', '--bare', '-b', 'main', origin)
  await git(work, 'init', '-q', '-b', 'main', a)
  for (const [k, v] of [['user.name', 'T'], ['user.email', 't@example.invalid'], ['commit.gpgsign', 'false']]) await git(a, 'config', k!, v!)
  await git(a, 'remote', 'add', 'origin', origin)
  await ok(zoo(a, ['init']), 'init')
  const committed = url ? url(objects) : objects
  await ok(zoo(a, ['remote', 'add', 'origin', committed]), 'remote add')
  if (committed !== objects) await git(a, 'config', 'zoo.remote.origin.url', objects)
  await writeFile(join(a, '.gitignore'), '*.bin\n')
  await git(a, 'add', '.zoo', '.gitignore')
  await git(a, 'commit', '-q', '-m', 'zoo')
  return { work, origin, a, objects }
}

async function addModel(z: Zoo, name: string, bytes: Buffer, dir = z.a): Promise<void> {
  const file = join(dir, `${name.replace(/\//g, '-')}.bin`)
  await writeFile(file, bytes)
  await ok(zoo(dir, ['add', file, '--name', name]), `add ${name}`)
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort()
}

describe('packs on zoo remotes, through the CLI', { concurrency: 3 }, () => {
  it('a lazy get reads byte ranges of packs and moves at most 1.1x the bytes it needs (http and s3)', async () => {
    const z = await setup('zoo-packs-lazy-', () => 'http://placeholder.invalid/')
    const server = await startStaticServer(z.objects)
    const proxy = await countingProxy(new URL(s3.endpoint))
    try {
      // the committed URL is the web server; this clone pushes to the folder behind it
      const config = JSON.parse(await readFile(join(z.a, '.zoo', 'config.json'), 'utf8'))
      config.remotes.origin.url = server.url
      await writeFile(join(z.a, '.zoo', 'config.json'), JSON.stringify(config, null, 2) + '\n')
      await git(z.a, 'commit', '-qam', 'remotes')
      const one = randomBytes(3 * MiB); const two = randomBytes(5 * MiB)
      await addModel(z, 'lazy/one', one)
      await addModel(z, 'lazy/two', two)
      await ok(zoo(z.a, ['push', 'origin']), 'push to the folder behind the web server')
      const s3url = `s3://${s3.bucket}/lazy`
      const s3env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.url }
      // the same objects into an s3 remote, in process (the refs are pushed already)
      const repo = await Repo.open(z.a, processCtx())
      const local = await repo.openStore()
      const bucket = openRemote(s3url, s3.env)
      try {
        const files = [...await repo.resolve('lazy/one').then((m) => m.files), ...await repo.resolve('lazy/two').then((m) => m.files)]
        await syncFiles(local, new TransferSide(bucket, { trustPuts: true }), files.map((f) => ({ root: f.root, size: f.size })))
      } finally { await local.close(); await bucket.close() }
      // both models went into one pack on each remote
      assert.deepEqual((await filesIn(join(z.objects, 'packs'))).filter((n) => !n.startsWith('.')).map((n) => n.replace(/^pack-[0-9a-f]{64}/, 'pack')), ['pack.idx', 'pack.pack', 'packs.txt'])

      for (const [remote, count, env] of [['origin', () => server.sent.bytes, {}], ['s3', () => proxy.received.bytes, s3env]] as const) {
        const c = join(z.work, `c-${remote}`)
        await ok(zoo(z.work, ['clone', '--lazy', z.origin, c], env), 'lazy clone')
        if (remote === 's3') await git(c, 'config', 'zoo.remote.origin.url', s3url)
        const before = count()
        const ranges = server.requests.length
        await ok(zoo(c, ['get', 'lazy/one', '--out', join(c, 'out')], env), `get through ${remote}`)
        const moved = count() - before
        assert.equal(sha(await readFile(join(c, 'out', 'lazy-one.bin'))), sha(one))
        assert.ok(moved >= one.length, `${remote}: moved ${moved} bytes, the file is ${one.length}`)
        assert.ok(moved <= 1.1 * one.length, `${remote}: moved ${moved} bytes for a ${one.length}-byte model (over 1.1x)`)
        if (remote === 'origin') {
          const gets = server.requests.slice(ranges).filter((r) => r.url.endsWith('.pack'))
          assert.ok(gets.length > 0 && gets.every((r) => /^bytes=\d+-\d+$/.test(String(r.headers.range))), 'packs are only read in ranges')
        }
      }
    } finally {
      await server.close(); await proxy.close()
      await rm(z.work, { recursive: true, force: true })
    }
  })

  it('a crash half way through a pack leaves nothing under a final name; a pack without its index stays invisible; the rerun succeeds; gc removes leftovers', async () => {
    const z = await setup('zoo-packs-crash-')
    try {
      const bytes = randomBytes(4 * MiB)
      await addModel(z, 'crash/m', bytes)
      const half = await zoo(z.a, ['push', 'origin'], { GIT_ZOO_CRASH_AT: 'remote-pack-midway' })
      assert.notEqual(half.code, 0)
      assert.match(half.stderr, /crash point remote-pack-midway/)
      const after1 = await filesIn(join(z.objects, 'packs'))
      assert.ok(after1.some((n) => n.startsWith('.tmp-')), `a temp file holds the half pack: ${after1}`)
      assert.deepEqual(after1.filter((n) => !n.startsWith('.tmp-')), [], 'no pack or index under a final name')
      assert.equal((await git(z.origin, 'branch', '--list', 'main')).trim(), '', 'no ref was sent')

      const between = await zoo(z.a, ['push', 'origin'], { GIT_ZOO_CRASH_AT: 'remote-pack-written' })
      assert.match(between.stderr, /crash point remote-pack-written/)
      const packs = (await filesIn(join(z.objects, 'packs'))).filter((n) => !n.startsWith('.tmp-'))
      assert.equal(packs.length, 1, `one pack, no index yet: ${packs}`)
      assert.match(packs[0]!, /^pack-[0-9a-f]{64}\.pack$/)
      assert.deepEqual(await packEntries(z.objects), [], 'a pack without its index lists nothing')
      await ok(zoo(z.a, ['push', 'origin']), 'push again')
      // the rerun packs the same objects, maybe in another order (uploads run side by side): the same
      // name when the order is the same (create-if-absent answers "exists"), else a second pack
      const done = (await filesIn(join(z.objects, 'packs'))).filter((n) => !n.startsWith('.tmp-'))
      assert.equal(done.filter((n) => n.endsWith('.idx')).length, 1, `${done}`)
      const orphans = done.filter((n) => n.endsWith('.pack') && !done.includes(n.replace('.pack', '.idx')))

      const c = join(z.work, 'c')
      await ok(zoo(z.work, ['clone', z.origin, c]), 'clone')
      await ok(zoo(c, ['verify']), 'verify the clone')
      const gc = JSON.parse((await ok(zoo(z.a, ['gc', '--remote', 'origin', '--grace', '0', '--json']), 'gc --remote')).stdout)
      assert.equal(gc.temp_files_removed, 1 + orphans.length, JSON.stringify(gc))
      assert.equal(gc.removed_objects, 0)
      const left = await filesIn(join(z.objects, 'packs'))
      assert.deepEqual(left.filter((n) => n.startsWith('.tmp-') || orphans.includes(n)), [], 'the half pack and any pack without an index are gone')
      await ok(zoo(c, ['fetch']), 'the remote still serves everything')
    } finally { await rm(z.work, { recursive: true, force: true }) }
  })

  it('a damaged pack index is rebuilt from its pack (every record checked against its CID)', async () => {
    const z = await setup('zoo-packs-idx-')
    try {
      const bytes = randomBytes(3 * MiB)
      await addModel(z, 'idx/m', bytes)
      await ok(zoo(z.a, ['push', 'origin']), 'push')
      const idx = (await filesIn(join(z.objects, 'packs'))).find((n) => n.endsWith('.idx'))!
      const file = join(z.objects, 'packs', idx)
      const good = await readFile(file)
      const bad = Buffer.from(good); bad[20]! ^= 0x55
      await unlink(file); await writeFile(file, bad)
      assert.throws(() => parseIndex(bad, idx))
      const c = join(z.work, 'c')
      await ok(zoo(z.work, ['clone', z.origin, c]), 'clone reads through the damaged index')
      await ok(zoo(c, ['get', 'idx/m', '--out', join(c, 'out')]), 'get')
      assert.equal(sha(await readFile(join(c, 'out', 'idx-m.bin'))), sha(bytes))
      const rebuilt = await readFile(file)
      assert.deepEqual(parseIndex(rebuilt, idx).map(([k, o, l]) => [k, o, l]).sort(), parseIndex(good, idx).map(([k, o, l]) => [k, o, l]).sort(), 'the index was written back, rebuilt')
    } finally { await rm(z.work, { recursive: true, force: true }) }
  })

  it('two pushers at once: neither loses the other\'s pack or index entries; packs.txt lists both', async () => {
    const z = await setup('zoo-packs-two-')
    try {
      await git(z.a, 'push', '-q', '--no-verify', 'origin', 'main')
      const b = join(z.work, 'b')
      await ok(zoo(z.work, ['clone', z.origin, b]), 'clone b')
      for (const [k, v] of [['user.name', 'B'], ['user.email', 'b@example.invalid'], ['commit.gpgsign', 'false']]) await git(b, 'config', k!, v!)
      const ma = randomBytes(3 * MiB); const mb = randomBytes(3 * MiB)
      await git(z.a, 'checkout', '-q', '-b', 'from-a')
      await addModel(z, 'two/a', ma)
      await git(b, 'checkout', '-q', '-b', 'from-b')
      await addModel(z, 'two/b', mb, b)
      // a stops with its pack written and its index not yet; b pushes everything meanwhile
      const pause = join(z.work, 'paused')
      const first = zoo(z.a, ['push', 'origin', 'from-a'], { GIT_ZOO_PAUSE_AT: 'remote-pack-written', GIT_ZOO_PAUSE_FILE: pause })
      while (!(await exists(pause))) await new Promise((r) => setTimeout(r, 20))
      await ok(zoo(b, ['push', 'origin', 'from-b']), 'push b while a is half way')
      await unlink(pause)
      await ok(first, 'push a')
      const names = (await filesIn(join(z.objects, 'packs'))).filter((n) => n.endsWith('.idx'))
      assert.equal(names.length, 2)
      assert.deepEqual((await readFile(join(z.objects, 'packs', 'packs.txt'), 'utf8')).split('\n').filter(Boolean).sort(), names)
      // through a web server without listings (packs.txt), a clone gets both models
      const server = await startStaticServer(z.objects, { listings: false })
      try {
        const c = join(z.work, 'c')
        await ok(zoo(z.work, ['clone', '--lazy', z.origin, c]), 'clone c')
        await git(c, 'config', 'zoo.remote.origin.url', server.url)
        for (const [branch, model, bytes] of [['from-a', 'two/a', ma], ['from-b', 'two/b', mb]] as const) {
          await git(c, 'checkout', '-q', branch)
          await ok(zoo(c, ['get', model, '--out', join(c, branch)]), `get ${model}`)
          assert.equal(sha(await readFile(join(c, branch, `${model.replace('/', '-')}.bin`))), sha(bytes))
        }
      } finally { await server.close() }
    } finally { await rm(z.work, { recursive: true, force: true }) }
  })

  it('gc --remote rewrites a pack half of whose objects are dead into a new pack; the live model still reads', async () => {
    const z = await setup('zoo-packs-gc-')
    try {
      await git(z.a, 'push', '-q', '--no-verify', 'origin', 'main')
      const keep = randomBytes(3 * MiB); const drop = randomBytes(3 * MiB)
      await git(z.a, 'checkout', '-q', '-b', 'feat')
      await addModel(z, 'gc/keep', keep)
      const keepCommit = (await git(z.a, 'rev-parse', 'HEAD')).trim()
      await addModel(z, 'gc/drop', drop)
      await ok(zoo(z.a, ['push', 'origin', 'feat']), 'push both models in one pack')
      const packsDir = join(z.objects, 'packs')
      const first = (await filesIn(packsDir)).filter((n) => n.endsWith('.pack'))
      assert.equal(first.length, 1)
      // main gets the first model only; the branch with the second is deleted
      await git(z.a, 'push', '-q', '--no-verify', 'origin', `${keepCommit}:refs/heads/main`)
      await git(z.a, 'checkout', '-q', 'main'); await git(z.a, 'reset', '-q', '--hard', keepCommit)
      await git(z.a, 'push', '-q', '--no-verify', 'origin', '--delete', 'feat')
      await git(z.a, 'branch', '-q', '-D', 'feat')
      const old = (Date.now() - 8 * 86400_000) / 1000
      for (const n of await filesIn(packsDir)) await utimes(join(packsDir, n), old, old)
      const gc = JSON.parse((await ok(zoo(z.a, ['gc', '--remote', 'origin', '--json']), 'gc --remote')).stdout)
      assert.equal(gc.packs_rewritten, 1, JSON.stringify(gc))
      assert.equal(gc.packs_removed, 0)
      assert.ok(gc.removed_objects > 0 && gc.freed_bytes >= drop.length, JSON.stringify(gc))
      const second = (await filesIn(packsDir)).filter((n) => n.endsWith('.pack'))
      assert.equal(second.length, 1)
      assert.notEqual(second[0], first[0], 'the old pack is gone, a new one holds the live objects')
      const left = await packEntries(z.objects)
      assert.equal(left.length, gc.live_objects)

      const c = join(z.work, 'c')
      await ok(zoo(z.work, ['clone', z.origin, c]), 'clone')
      await ok(zoo(c, ['get', 'gc/keep', '--out', join(c, 'out')]), 'get the live model')
      assert.equal(sha(await readFile(join(c, 'out', 'gc-keep.bin'))), sha(keep))
      await ok(zoo(c, ['verify']), 'verify')

    } finally { await rm(z.work, { recursive: true, force: true }) }
  })

  it('gc --remote merges the small packs of small pushes into one, past the grace; every model still reads', async () => {
    const z = await setup('zoo-packs-merge-')
    try {
      const models = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)]
      for (const [i, bytes] of models.entries()) {
        await addModel(z, `merge/m${i}`, bytes)
        await ok(zoo(z.a, ['push', 'origin']), `push ${i}`)
      }
      const packsDir = join(z.objects, 'packs')
      assert.equal((await filesIn(packsDir)).filter((n) => n.endsWith('.pack')).length, 3, 'one pack per push')
      const young = JSON.parse((await ok(zoo(z.a, ['gc', '--remote', 'origin', '--json']), 'gc, young packs')).stdout)
      assert.equal(young.packs_rewritten, 0, 'packs younger than the grace are left alone')
      const old = (Date.now() - 8 * 86400_000) / 1000
      for (const n of await filesIn(packsDir)) await utimes(join(packsDir, n), old, old)
      const gc = JSON.parse((await ok(zoo(z.a, ['gc', '--remote', 'origin', '--json']), 'gc --remote')).stdout)
      assert.equal(gc.packs_rewritten, 3, JSON.stringify(gc))
      assert.equal(gc.removed_objects, 0)
      assert.equal((await filesIn(packsDir)).filter((n) => n.endsWith('.pack')).length, 1, 'merged into one pack')
      assert.equal((await packEntries(z.objects)).length, gc.live_objects)
      const c = join(z.work, 'c')
      await ok(zoo(z.work, ['clone', z.origin, c]), 'clone')
      await ok(zoo(c, ['verify']), 'verify every model of the clone')
    } finally { await rm(z.work, { recursive: true, force: true }) }
  })

  for (const kind of ['path', 's3'] as const) {
    it(`${kind}: a remote in the loose layout (layout 1) is read, migrated by \`git zoo remote migrate\`, then read again`, async () => {
      const s3url = `s3://${s3.bucket}/migrate-${randomBytes(4).toString('hex')}`
      const z = await setup(`zoo-packs-migrate-${kind}-`, kind === 's3' ? () => s3url : undefined)
      const url = kind === 's3' ? s3url : z.objects
      const env = kind === 's3' ? s3.env : {}
      const looseStore = (): PathStore | S3Store => kind === 's3' ? new S3Store(url, { env }) : new PathStore(url)
      const count = async (it: AsyncIterable<unknown>): Promise<number> => { let n = 0; for await (const _ of it) n++; return n }
      try {
        if (kind === 's3') await git(z.a, 'config', '--unset', 'zoo.remote.origin.url')
        const bytes = randomBytes(3 * MiB)
        await addModel(z, 'old/m', bytes)
        await git(z.a, 'push', '-q', '--no-verify', 'origin', 'main')
        // what git-zoo wrote before packs: one file or S3 object per object (layout 1)
        const repo = await Repo.open(z.a, processCtx())
        const manifest = await repo.resolve('old/m')
        const local = await repo.openStore()
        const loose = looseStore()
        await syncFiles(local, new TransferSide(loose), manifest.files.map((f) => ({ root: f.root, size: f.size })))
        await local.close(); await loose.close()
        const objects = await count(looseStore().list())
        assert.ok(objects > 3)
        const before = openRemote(url, env)
        assert.equal(await before.backing.readFile(LAYOUT_FILE, 4096), undefined)
        assert.equal(await before.layout(), 1)
        await before.close()

        const c = join(z.work, 'c')
        await ok(zoo(z.work, ['clone', z.origin, c], env), 'clone from the loose layout')
        await ok(zoo(c, ['verify'], env), 'verify')

        const m = JSON.parse((await ok(zoo(z.a, ['remote', 'migrate', 'origin', '--json'], env), 'migrate')).stdout)
        assert.deepEqual({ ...m, bytes_packed: 0 }, { remote: 'origin', url, layout_before: 1, layout: 2, objects_packed: objects, bytes_packed: 0, loose_removed: objects })
        assert.ok(m.bytes_packed >= bytes.length)
        const after = openRemote(url, env)
        assert.deepEqual(JSON.parse(Buffer.from((await after.backing.readFile(LAYOUT_FILE, 4096))!).toString()), { format: 'git-zoo remote', layout: 2 })
        assert.equal(await count(looseStore().list()), 0, 'no loose object is left')
        assert.equal(await count(after.list()), objects, 'every object is in a pack')
        assert.ok(await after.backing.readFile(PACK_LIST, 4096))
        await after.close()

        const d = join(z.work, 'd')
        await ok(zoo(z.work, ['clone', z.origin, d], env), 'clone from the migrated remote')
        await ok(zoo(d, ['get', 'old/m', '--out', join(d, 'out')], env), 'get')
        assert.equal(sha(await readFile(join(d, 'out', 'old-m.bin'))), sha(bytes))
        const again = JSON.parse((await ok(zoo(z.a, ['remote', 'migrate', 'origin', '--json'], env), 'migrate again')).stdout)
        assert.equal(again.objects_packed, 0)
        assert.equal(again.layout_before, 2)
      } finally { await rm(z.work, { recursive: true, force: true }) }
    })
  }
})

/** An HTTP proxy in front of s3rver that counts the body bytes it passes back (headers aside). */
async function countingProxy(target: URL): Promise<{ url: string; received: { bytes: number }; close: () => Promise<void> }> {
  const received = { bytes: 0 }
  const server = http.createServer((req, res) => {
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.on('data', (chunk: Buffer) => { if (req.method === 'GET') received.bytes += chunk.length })
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }),
  }
}
