/**
 * `git zoo verify --repair` through the real CLI and real git, for each kind of zoo remote (a folder,
 * a static web server over a folder, s3rver): a clone whose local store has a flipped byte, an
 * object its index no longer lists and a truncated pack is repaired from the zoo remote; the damaged
 * bytes are kept in <store>/bad/<cid>; a remote that holds bad bytes too repairs nothing.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { flipByte, git, processCtx, zoo, type Run } from './cli.js'
import { Repo } from '../src/repo.js'
import { LocalStore, encodeIndex, parseIndex } from '../src/cas/local.js'
import { parseCid } from '../src/cas/cid.js'
import { syncFiles } from '../src/remote/dag.js'
import { damageInPack, startS3rver, startStaticServer, type S3Server } from './remote-servers.js'
import { openRemote } from '../src/remote/index.js'

let s3: S3Server | undefined
let raw: S3Client | undefined
before(async () => {
  s3 = await startS3rver('zoo')
  raw = new S3Client({
    region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  })
})
after(async () => { raw?.destroy(); await s3?.close() })

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

/** Replace an object's bytes inside its pack on a folder remote by `bytes` (same length). */
async function overwriteFile(dir: string, cid: string, bytes: Uint8Array): Promise<void> {
  await damageInPack(openRemote(dir, {}), parseCid(cid), bytes)
}

interface Kind {
  name: string
  setup: (work: string) => Promise<{ url: string; pushUrl?: string; env: NodeJS.ProcessEnv; poison: (cid: string, bytes: Uint8Array) => Promise<void>; close: () => Promise<void> }>
}

const kinds: Kind[] = [
  {
    name: 'path',
    setup: async (work) => {
      const dir = join(work, 'zoo-objects')
      return { url: dir, env: {}, poison: (cid, b) => overwriteFile(dir, cid, b), close: async () => {} }
    },
  },
  {
    name: 'http',
    setup: async (work) => {
      const dir = join(work, 'zoo-objects')
      const server = await startStaticServer(dir)
      return { url: server.url, pushUrl: dir, env: {}, poison: (cid, b) => overwriteFile(dir, cid, b), close: () => server.close() }
    },
  },
  {
    name: 's3',
    setup: async (work) => {
      const prefix = `${work.split('/').pop()}/zoo/`
      return {
        url: `s3://${s3!.bucket}/${prefix.slice(0, -1)}`, env: s3!.env, close: async () => {},
        poison: (cid, b) => damageInPack(openRemote(`s3://${s3!.bucket}/${prefix.slice(0, -1)}`, s3!.env), parseCid(cid), b),
      }
    },
  },
]

interface Obj { cid: string; pack: string; offset: number; length: number }

/** The objects of a clone's store, in pack order. */
async function storeObjects(storeRoot: string): Promise<Obj[]> {
  const store = await LocalStore.open(storeRoot)
  try {
    return store.entries().map(([cid, e]) => ({ cid: cid.toString(), ...e })).sort((a, b) => a.pack.localeCompare(b.pack) || a.offset - b.offset)
  } finally { await store.close() }
}


describe('verify --repair', { concurrency: kinds.length + 1 }, () => {
  for (const kind of kinds) {
    it(`repairs a flipped byte, an unlisted object and a truncated pack from a ${kind.name} remote; a remote with bad bytes repairs nothing`, async () => {
      const work = await mkdtemp(join(tmpdir(), 'zoo-repair-'))
      const remote = await kind.setup(work)
      const env = remote.env
      try {
        const bare = join(work, 'origin.git')
        const a = join(work, 'a')
        await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
        await git(work, 'init', '-q', '-b', 'main', a)
        for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']]) await git(a, 'config', k!, v!)
        await git(a, 'remote', 'add', 'origin', bare)
        await ok(zoo(a, ['init'], env), 'init')
        await ok(zoo(a, ['remote', 'add', 'origin', remote.url], env), 'remote add')
        if (remote.pushUrl) await git(a, 'config', 'zoo.remote.origin.url', remote.pushUrl)
        await git(a, 'commit', '-q', '-m', 'zoo set up')
        // 4 MiB of random bytes: chunks are at most 1 MiB, so there are at least 4 chunks and a node
        const model = randomBytes(4 * 1024 * 1024)
        await writeFile(join(a, 'model.bin'), model)
        await ok(zoo(a, ['add', 'model.bin', '--name', 'demo/net'], env), 'add')
        await ok(zoo(a, ['push'], env), 'push')

        await ok(zoo(work, ['clone', bare, 'b'], env), 'clone')
        const b = join(work, 'b')
        const repoB = await Repo.open(b, processCtx(env))
        const storeRoot = await repoB.storeRoot()
        const root = (await repoB.resolve('demo/net')).files[0]!.root
        const objects = await storeObjects(storeRoot)
        const chunks = objects.filter((o) => o.cid !== root)
        assert.ok(chunks.length >= 4, `${chunks.length} chunks`)
        const node = objects.find((o) => o.cid === root)!
        const packOf = (o: Obj): string => join(storeRoot, 'packs', o.pack)
        const idxOf = (o: Obj): string => packOf(o).replace(/\.pack$/, '.idx')

        // damage: a flipped byte in a chunk, a chunk its index no longer lists, a pack cut inside the node
        const flipped = chunks[0]!
        const flippedBytes = (await flipByte(packOf(flipped), flipped.offset + 7)).subarray(flipped.offset, flipped.offset + flipped.length)
        const unlisted = chunks[1]!
        const key = Buffer.from(parseCid(unlisted.cid).bytes).toString('latin1')
        const entries = parseIndex(await readFile(idxOf(unlisted)), 'idx').filter(([k]) => k !== key)
        await unlink(idxOf(unlisted))
        await writeFile(idxOf(unlisted), encodeIndex(entries))
        const nodePack = await readFile(packOf(node))
        assert.equal(node.offset + node.length, nodePack.length, 'the root node is the last record of its pack')
        const cut = node.offset + Math.floor(node.length / 2)
        await truncate(packOf(node), cut)
        const nodePrefix = nodePack.subarray(node.offset, cut)

        const v = await zoo(b, ['verify'], env)
        assert.equal(v.code, 1, v.stderr)
        assert.ok(v.stderr.includes(`${root}: corrupt`), v.stderr)
        assert.match(v.stderr, /`git zoo verify --repair` replaces damaged or missing objects/)

        const before = (await readdir(join(storeRoot, 'packs'))).filter((n) => n.endsWith('.idx'))
        const r = await zoo(b, ['verify', '--repair', '--json'], env)
        assert.equal(r.code, 0, r.stderr + r.stdout)
        const j = JSON.parse(r.stdout)
        assert.equal(j.ok, true)
        assert.deepEqual(j.problems, [])
        assert.deepEqual(j.unrepaired, [])
        const byCid = new Map<string, { problem: string; from: string; moved_to: string | null; models: string[] }>(j.repaired.map((x: { object: string }) => [x.object, x]))
        assert.deepEqual([...byCid.keys()].sort(), [root, flipped.cid, unlisted.cid].sort())
        for (const x of byCid.values()) { assert.equal(x.from, 'origin'); assert.deepEqual(x.models, ['demo/net@v1']) }
        // the damaged bytes are kept aside, exactly as they were read
        assert.equal(byCid.get(flipped.cid)!.problem, 'corrupt')
        assert.equal(byCid.get(flipped.cid)!.moved_to, join(storeRoot, 'bad', flipped.cid))
        assert.deepEqual(await readFile(join(storeRoot, 'bad', flipped.cid)), Buffer.from(flippedBytes))
        assert.deepEqual(await readFile(join(storeRoot, 'bad', root)), Buffer.from(nodePrefix))
        assert.equal(byCid.get(unlisted.cid)!.problem, 'missing')
        assert.equal(byCid.get(unlisted.cid)!.moved_to, null)
        // the good copies are in new packs; every object is listed by exactly one index, and the cut
        // pack, with nothing good left in it, lost its index (gc removes such a pack)
        const idxs = (await readdir(join(storeRoot, 'packs'))).filter((n) => n.endsWith('.idx'))
        const listed: string[] = []
        for (const n of idxs) for (const [k] of parseIndex(await readFile(join(storeRoot, 'packs', n)), n)) listed.push(k)
        assert.equal(new Set(listed).size, listed.length, 'no object is listed twice')
        assert.equal(listed.length, objects.length)
        assert.ok(!idxs.includes(node.pack.replace(/\.pack$/, '.idx')))
        // one round: the node's good copy brought the damage below it along, children first (invariant 2)
        const fresh = idxs.filter((n) => !before.includes(n))
        assert.equal(fresh.length, 1, `new indexes: ${fresh.join(', ')}`)
        const at = new Map(parseIndex(await readFile(join(storeRoot, 'packs', fresh[0]!)), fresh[0]!).map(([k, off]) => [k, off]))
        const offsetOf = (cid: string): number => at.get(Buffer.from(parseCid(cid).bytes).toString('latin1'))!
        assert.ok(offsetOf(root) > offsetOf(flipped.cid) && offsetOf(root) > offsetOf(unlisted.cid), 'the node comes after its chunks')

        await ok(zoo(b, ['verify'], env), 'verify after repair')
        await ok(zoo(b, ['get', 'demo/net', '--out', 'o'], env), 'get after repair')
        assert.ok(Buffer.compare(await readFile(join(b, 'o', 'model.bin')), model) === 0, 'get gives the exact bytes')

        // the remote holds bad bytes for a chunk that is damaged here too: nothing is repaired or stored
        const victim = chunks[2]!
        const objectsNow = await storeObjects(storeRoot)
        const here = objectsNow.find((o) => o.cid === victim.cid)!
        const localBad = await flipByte(join(storeRoot, 'packs', here.pack), here.offset + 3)
        const poisoned = Buffer.from(localBad.subarray(here.offset, here.offset + here.length))
        poisoned[11]! ^= 1
        await remote.poison(victim.cid, poisoned)
        const packsBefore = (await readdir(join(storeRoot, 'packs'))).sort()
        const bad = await zoo(b, ['verify', '--repair', '--json'], env)
        assert.equal(bad.code, 1, bad.stderr + bad.stdout)
        const jb = JSON.parse(bad.stdout)
        assert.deepEqual(jb.repaired, [])
        assert.equal(jb.unrepaired.length, 1)
        assert.equal(jb.unrepaired[0].object, victim.cid)
        assert.equal(jb.unrepaired[0].problem, 'corrupt')
        assert.match(jb.unrepaired[0].reason, /origin .*it holds damaged bytes/)
        assert.deepEqual((await readdir(join(storeRoot, 'packs'))).sort(), packsBefore, 'nothing was stored')
        await assert.rejects(readFile(join(storeRoot, 'bad', victim.cid)), /ENOENT/)
        const human = await zoo(b, ['verify', '--repair'], env)
        assert.equal(human.code, 1)
        assert.ok(human.stderr.includes(`not repaired: demo/net@v1 ${victim.cid}: corrupt: no zoo remote has a good copy`), human.stderr)

        if (kind.name === 'path') {
          // gc reclaims the damaged records that no index lists any more (packs younger than --grace are kept)
          await remote.poison(victim.cid, poisoned.map((x, i) => (i === 11 ? x ^ 1 : i === 3 ? x ^ 0x5a : x)))
          await ok(zoo(b, ['verify', '--repair'], env), 'repair once the remote is good again')
          const gc = JSON.parse((await ok(zoo(b, ['gc', '--grace', '0', '--json'], env), 'gc')).stdout)
          assert.ok(gc.packs_rewritten >= 1, JSON.stringify(gc))
          await ok(zoo(b, ['verify'], env), 'verify after gc')
          await rm(join(b, 'o'), { recursive: true })
          await ok(zoo(b, ['get', 'demo/net', '--out', 'o'], env), 'get after gc')
          assert.ok(Buffer.compare(await readFile(join(b, 'o', 'model.bin')), model) === 0)
        }
      } finally {
        await remote.close()
        await rm(work, { recursive: true, force: true })
      }
    })
  }

  it('takes a good copy from the next remote when the default one holds bad bytes; --from limits it to one; a killed repair completes when run again', async () => {
    const work = await mkdtemp(join(tmpdir(), 'zoo-repair2-'))
    try {
      const a = join(work, 'a')
      await git(work, 'init', '-q', '-b', 'main', a)
      for (const [k, v] of [['user.name', 'T'], ['user.email', 't@example.invalid'], ['commit.gpgsign', 'false']]) await git(a, 'config', k!, v!)
      await ok(zoo(a, ['init']), 'init')
      const main = join(work, 'main-objects'), backup = join(work, 'backup-objects')
      await ok(zoo(a, ['remote', 'add', 'main', main, '--default']), 'remote add main')
      await ok(zoo(a, ['remote', 'add', 'backup', backup]), 'remote add backup')
      const model = randomBytes(3 * 1024 * 1024)
      await writeFile(join(a, 'model.bin'), model)
      await ok(zoo(a, ['add', 'model.bin', '--name', 'm']), 'add')
      // both remotes get every object (set up with the transfer library: push needs a git remote)
      const repo = await Repo.open(a, processCtx())
      const m = await repo.resolve('m')
      for (const dir of [main, backup]) {
        const local = await repo.openStore()
        const dest = openRemote(dir, {})
        await syncFiles(local, dest, m.files.map((f) => ({ root: f.root, size: f.size })))
        await dest.close(); await local.close()
      }
      const storeRoot = await repo.storeRoot()
      const root = (await repo.resolve('m')).files[0]!.root
      const chunk = (await storeObjects(storeRoot)).find((o) => o.cid !== root)!
      const local = await flipByte(join(storeRoot, 'packs', chunk.pack), chunk.offset + 1)
      const bad = Buffer.from(local.subarray(chunk.offset, chunk.offset + chunk.length))
      await overwriteFile(main, chunk.cid, bad)

      const only = await zoo(a, ['verify', '--repair', '--from', 'main', '--json'])
      assert.equal(only.code, 1, only.stderr)
      assert.match(JSON.parse(only.stdout).unrepaired[0].reason, /^no zoo remote has a good copy: main \(.*\): it holds damaged bytes/)
      const r = await zoo(a, ['verify', '--repair', '--json'])
      assert.equal(r.code, 0, r.stderr + r.stdout)
      const j = JSON.parse(r.stdout)
      assert.deepEqual(j.repaired.map((x: { object: string; from: string }) => [x.object, x.from]), [[chunk.cid, 'backup']])
      const usage = await zoo(a, ['verify', '--from', 'backup'])
      assert.equal(usage.code, 2)
      assert.match(usage.stderr, /--from <zoo-remote> goes with --repair/)
      const unknown = await zoo(a, ['verify', '--repair', '--from', 'nowhere'])
      assert.equal(unknown.code, 2)
      assert.match(unknown.stderr, /no zoo remote named nowhere/)
      await ok(zoo(a, ['get', 'm', '--out', 'o']), 'get')
      assert.ok(Buffer.compare(await readFile(join(a, 'o', 'model.bin')), model) === 0)

      // killed after the good copy is durable, before the old index is rewritten: run it again
      const other = (await storeObjects(storeRoot)).find((o) => o.cid !== root && o.cid !== chunk.cid)!
      await flipByte(join(storeRoot, 'packs', other.pack), other.offset + 1)
      const killed = await zoo(a, ['verify', '--repair'], { GIT_ZOO_CRASH_AT: 'repair-after-pack' })
      assert.notEqual(killed.code, 0)
      assert.match(killed.stderr, /crash point repair-after-pack/)
      const listedTwice: string[] = []
      for (const n of (await readdir(join(storeRoot, 'packs'))).filter((x) => x.endsWith('.idx'))) {
        for (const [k] of parseIndex(await readFile(join(storeRoot, 'packs', n)), n)) listedTwice.push(k)
      }
      assert.equal(listedTwice.length, new Set(listedTwice).size + 1, 'the object is listed by the old and the new index')
      await ok(zoo(a, ['verify', '--repair']), 'repair run again')
      await ok(zoo(a, ['verify']), 'verify after the second run')
      const listed: string[] = []
      for (const n of (await readdir(join(storeRoot, 'packs'))).filter((x) => x.endsWith('.idx'))) {
        for (const [k] of parseIndex(await readFile(join(storeRoot, 'packs', n)), n)) listed.push(k)
      }
      assert.equal(listed.length, new Set(listed).size, 'each object listed once')
      await rm(join(a, 'o'), { recursive: true })
      await ok(zoo(a, ['get', 'm', '--out', 'o']), 'get after the second run')
      assert.ok(Buffer.compare(await readFile(join(a, 'o', 'model.bin')), model) === 0)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
})
