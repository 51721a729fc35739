/**
 * Sharing a zoo end to end, through the real CLI and real git: two clones on one machine, a bare
 * repository as the git remote, and each kind of zoo remote (a folder, a static web server over a
 * folder, and s3rver as an S3-compatible server). s3rver accepts requests signed with its fixed key
 * without modelling real credential checks and ignores conditional writes: neither is claimed here.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, processCtx, run, tempRepo, zoo } from './cli.js'
import { Repo } from '../src/repo.js'
import { ensureObjects } from '../src/remote/sync.js'
import { packEntries, poisonInPack, startS3rver, startStaticServer, type S3Server, type StaticServer } from './remote-servers.js'

interface Kind {
  name: string
  /** The URL committed in .zoo/config.json, and the URL the pushing clone writes to (if different). */
  setup: (work: string) => Promise<{ url: string; pushUrl?: string; env: NodeJS.ProcessEnv; poison?: (cid: string) => Promise<void>; close: () => Promise<void> }>
}

let s3: S3Server | undefined
before(async () => { s3 = await startS3rver('zoo') })
after(async () => { await s3?.close() })

/** One byte of the object flipped inside its pack on the remote (a poisoned byte range). */
async function poisonFile(dir: string, cid: string): Promise<void> {
  await poisonInPack(dir, cid)
}

const kinds: Kind[] = [
  {
    name: 'path',
    setup: async (work) => {
      const dir = join(work, 'zoo-objects')
      return { url: dir, env: {}, poison: (cid) => poisonFile(dir, cid), close: async () => {} }
    },
  },
  {
    name: 'http (static server over a folder; the pushing clone writes to the folder)',
    setup: async (work) => {
      const dir = join(work, 'zoo-objects')
      const server: StaticServer = await startStaticServer(dir)
      return { url: server.url, pushUrl: dir, env: {}, poison: (cid) => poisonFile(dir, cid), close: () => server.close() }
    },
  },
  {
    name: 's3 (s3rver)',
    setup: async (work) => ({ url: `s3://${s3!.bucket}/${work.split('/').pop()}/zoo`, env: s3!.env, close: async () => {} }),
  },
]

async function ok(p: Promise<{ code: number; stdout: string; stderr: string }>, what: string): Promise<{ stdout: string; stderr: string }> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

describe('sharing through each kind of zoo remote (side by side)', { concurrency: kinds.length }, () => {
  for (const kind of kinds) {
    describe(`sharing through a ${kind.name} zoo remote`, () => {
      it('add + push in one clone; clone, get, pull in another: identical bytes, only new bytes move', async () => {
        const work = await mkdtemp(join(tmpdir(), 'zoo-share-'))
        const remote = await kind.setup(work)
        const env = remote.env
        const a = await tempRepo('zoo-share-a-')
        try {
          const bare = join(work, 'origin.git')
          await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
          // Clone A: a zoo with a zoo remote, pushed once before any model exists.
          await git(a.dir, 'remote', 'add', 'origin', bare)
          await ok(zoo(a.dir, ['init'], env), 'init')
          await ok(zoo(a.dir, ['remote', 'add', 'origin', remote.url], env), 'remote add')
          if (remote.pushUrl) await git(a.dir, 'config', 'zoo.remote.origin.url', remote.pushUrl)
          const listed = JSON.parse((await ok(zoo(a.dir, ['remote', 'list', '--json'], env), 'remote list')).stdout)
          assert.equal(listed.remotes[0].name, 'origin')
          await git(a.dir, 'commit', '-q', '-m', 'zoo set up')
          await ok(run('git', ['push', '-q', '-u', 'origin', 'main'], { cwd: a.dir, env }), 'first git push')

          // v1: a 3 MiB checkpoint, pushed with `git zoo push`.
          const v1 = randomBytes(3 * 1024 * 1024)
          await writeFile(join(a.dir, 'model.bin'), v1)
          const add1 = JSON.parse((await ok(zoo(a.dir, ['add', 'model.bin', '--name', 'demo/net', '--json'], env), 'add v1')).stdout)
          const push = JSON.parse((await ok(zoo(a.dir, ['push', '--json'], env), 'push')).stdout)
          assert.equal(push.git_remote, 'origin')
          assert.ok(push.objects > 0 && push.bytes >= v1.length, JSON.stringify(push))
          assert.equal(push.remote, 'origin')
          assert.equal(await git(a.dir, 'rev-parse', 'HEAD'), await git(bare, 'rev-parse', 'main'))

          // Clone B: git clone + init + objects, then get.
          const cl = JSON.parse((await ok(zoo(work, ['clone', bare, 'b', '--json'], env), 'clone')).stdout)
          const b = join(work, 'b')
          assert.equal(cl.lazy, false)
          assert.equal(cl.models, 1)
          assert.ok(cl.bytes >= v1.length && cl.bytes <= add1.stored_bytes + 1024, JSON.stringify(cl))
          await ok(zoo(b, ['get', 'demo/net', '--out', 'out1'], env), 'get v1')
          assert.ok(Buffer.compare(await readFile(join(b, 'out1', 'model.bin')), v1) === 0, 'v1 bytes identical')
          const again = JSON.parse((await ok(zoo(b, ['fetch', '--json'], env), 'fetch again')).stdout)
          assert.equal(again.objects, 0, 'a second fetch moves nothing')

          // v2: a fine-tune changing 64 KiB in the middle, pushed by a plain `git push` (pre-push hook).
          const v2 = Buffer.from(v1)
          randomBytes(64 * 1024).copy(v2, 1024 * 1024)
          await writeFile(join(a.dir, 'model.bin'), v2)
          const add2 = JSON.parse((await ok(zoo(a.dir, ['add', 'model.bin', '--name', 'demo/net', '--json'], env), 'add v2')).stdout)
          assert.equal(add2.version, 2)
          const hookPush = await ok(run('git', ['push', '-q', 'origin', 'main'], { cwd: a.dir, env }), 'git push (hook)')
          assert.match(hookPush.stderr, /uploaded \d+ object/)

          const pull = JSON.parse((await ok(zoo(b, ['pull', '--json'], env), 'pull')).stdout)
          assert.ok(pull.objects > 0)
          assert.ok(pull.bytes <= 1.05 * add2.stored_bytes + 4096, `pull moved ${pull.bytes} bytes for ${add2.stored_bytes} new`)
          assert.ok(pull.skipped_bytes >= v1.length / 2, JSON.stringify(pull))
          await ok(zoo(b, ['get', 'demo/net@v2', '--out', 'out2'], env), 'get v2')
          assert.ok(Buffer.compare(await readFile(join(b, 'out2', 'model.bin')), v2) === 0, 'v2 bytes identical')

          // A lazy clone fetches nothing until asked.
          const lazy = JSON.parse((await ok(zoo(work, ['clone', '--lazy', bare, 'c', '--json'], env), 'lazy clone')).stdout)
          assert.equal(lazy.objects, 0)
          const c = join(work, 'c')
          const f1 = JSON.parse((await ok(zoo(c, ['fetch', 'demo/net@v1', '--json'], env), 'fetch v1')).stdout)
          assert.ok(f1.objects > 0 && f1.models === 1)
          await ok(zoo(c, ['get', 'demo/net@v1', '--out', 'o'], env), 'get in lazy clone')
          assert.ok(Buffer.compare(await readFile(join(c, 'o', 'model.bin')), v1) === 0)
          // What get calls in a lazy clone: fetch a model's missing objects, or nothing when present.
          const repoC = await Repo.open(c, processCtx(env))
          const m2 = await repoC.resolve('demo/net@v2')
          const fetched = await ensureObjects(repoC, [m2])
          assert.ok(fetched && fetched.objects > 0 && fetched.skipped_bytes > 0, JSON.stringify(fetched))
          assert.equal(await ensureObjects(repoC, [m2]), undefined)
          await ok(zoo(c, ['get', 'demo/net@v2', '--out', 'o2'], env), 'get v2 in lazy clone')
          assert.ok(Buffer.compare(await readFile(join(c, 'o2', 'model.bin')), v2) === 0)

          // A poisoned object on the remote: named, nothing bad stored, non-zero exit.
          if (remote.poison) {
            const victims = (await packEntries(join(work, 'zoo-objects'))).map((e) => e.cid).filter((c) => c.startsWith('bafk'))
            const d = await tempRepo('zoo-share-d-')
            try {
              const cloned = await zoo(work, ['clone', '--lazy', bare, 'd'], env)
              assert.equal(cloned.code, 0, cloned.stderr)
              await remote.poison(victims[0]!)
              const bad = await zoo(join(work, 'd'), ['fetch'], env)
              assert.equal(bad.code, 1, bad.stderr)
              assert.ok(bad.stderr.includes(victims[0]!), bad.stderr)
              assert.ok(bad.stderr.includes(remote.url.replace(/\/$/, '')), bad.stderr)
              // get fetches what it lacks: it fails for a model that needs the poisoned object, and
              // otherwise writes exactly the promoted bytes; it never writes poisoned bytes out
              let refused = 0
              for (const [ref, bytes] of [['demo/net@v1', v1], ['demo/net@v2', v2]] as const) {
                const out = join(work, 'd', ref.replace(/[@/]/g, '-'))
                const get = await zoo(join(work, 'd'), ['get', ref, '--out', out], env)
                if (get.code === 0) assert.deepEqual(await readFile(join(out, 'model.bin')), Buffer.from(bytes))
                else { refused++; assert.ok(get.stderr.includes(victims[0]!), get.stderr); await assert.rejects(readdir(out), /ENOENT/) }
              }
              assert.ok(refused >= 1, 'the poisoned object belongs to one of the versions, whose get must fail')
            } finally { await d.cleanup() }
          }
        } finally {
          await a.cleanup()
          await remote.close()
          await rm(work, { recursive: true, force: true })
        }
      })
    })
  }
})

describe('pushing without a zoo remote', () => {
  it('refuses to push refs whose objects have nowhere to go (invariant 4)', async () => {
    const work = await mkdtemp(join(tmpdir(), 'zoo-share-'))
    const a = await tempRepo('zoo-share-a-')
    try {
      const bare = join(work, 'origin.git')
      await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
      await git(a.dir, 'remote', 'add', 'origin', bare)
      await ok(zoo(a.dir, ['init']), 'init')
      await git(a.dir, 'commit', '-q', '-m', 'zoo set up')
      await writeFile(join(a.dir, 'model.bin'), randomBytes(100_000))
      await ok(zoo(a.dir, ['add', 'model.bin', '--name', 'demo/net']), 'add')
      const pushed = await run('git', ['push', 'origin', 'main'], { cwd: a.dir })
      assert.notEqual(pushed.code, 0)
      assert.match(pushed.stderr, /no zoo remote/)
      assert.equal((await run('git', ['rev-parse', '--verify', '-q', 'main'], { cwd: bare })).code, 1, 'no ref reached the git remote')
      const z = await zoo(a.dir, ['push', 'origin', 'main'])
      assert.equal(z.code, 1)
      assert.match(z.stderr, /git zoo remote add/)
    } finally {
      await a.cleanup()
      await rm(work, { recursive: true, force: true })
    }
  })
})
