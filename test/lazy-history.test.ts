/**
 * A query on history in a lazy clone (spec/catalog.md, "History in a lazy clone"), through the real
 * CLI, real git and a path zoo remote: the checkpoint nodes the local store lacks are fetched from
 * the zoo remote (verified, kept in memory, not stored) and the answer is the promoting clone's; the
 * catalog keeps that history, so the next query needs no remote. With the zoo remote unreachable the
 * query fails with E_HISTORY_UNAVAILABLE (exit 3) naming the models and the fix, queries without
 * history still answer, and the same query answers once the remote is back; a clone that is not
 * lazy is told to fetch, and answers after `git zoo fetch`. Fetched in rounds of one version,
 * each round's history is kept by the cache; with a cache that cannot be written, the query fails
 * naming the rows earlier rounds fetched rather than answer without their history.
 */
import { before, after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { BIN, ROOT, git, processCtx, run, zoo, zooWithOrigin, type Run } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { LocalStore } from '../src/cas/local.js'
import type { Io } from '../src/cli/command.js'

const EPOCHS = [0, 1, 2, 3]
const T0 = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00000_0_seed-1_2021-03-01'
const T1 = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00001_1_seed-2_2021-03-01'
const T2 = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00002_2_seed-3_2021-03-01'
const QUERY = ['find', 'test_acc@2>0.7', 'best.test_acc>=0.71', '--sort', 'seed', '--json']

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`)
  return r
}

const names = (r: Run): string[] => (JSON.parse(r.stdout) as { models: Array<{ name: string }> }).models.map((m) => m.name)

let work: string
let bare: string
let objects: string

/** work/a imports three Ray Tune trials (format 2 manifests: histories in checkpoint nodes) and pushes to origin.git and the zoo remote work/objects. */
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-lazy-history-'))
  const a = join(work, 'a'), src = join(work, 'src')
  bare = join(work, 'origin.git')
  objects = join(work, 'objects')
  await zooWithOrigin(work, a, bare)
  await ok(zoo(a, ['remote', 'add', 'origin', objects]), 'remote add')
  await git(a, 'add', '-A')
  await git(a, 'commit', '-q', '-m', 'zoo set up')
  const exp = join(src, 'tune_zoo_mnist_uniform')
  for (const [i, seed] of [[0, 1], [1, 2], [2, 3]] as const) {
    const t = join(exp, `NN_tune_trainable_a1b2c_0000${i}_${i}_seed=${seed}_2021-03-01`)
    for (const e of EPOCHS) {
      await mkdir(join(t, `checkpoint_${String(e).padStart(6, '0')}`), { recursive: true })
      const w = new Float32Array(64).map((_, j) => Math.cos(j * (e + 1) + i))
      await writeFile(join(t, `checkpoint_${String(e).padStart(6, '0')}`, 'model.safetensors'), encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [64], data: new Uint8Array(w.buffer) }]))
    }
    await writeFile(join(t, 'params.json'), JSON.stringify({ seed, 'model::type': 'MLP' }))
    // test_acc peaks at epoch 2 (0.7 + 0.01 * seed) for seeds 1 and 2; seed 3's run stays low
    const acc = (e: number): number => (seed === 3 ? 0.3 : 0.5 + 0.1 * e + 0.01 * seed - (e === 3 ? 0.15 : 0))
    await writeFile(join(t, 'result.json'), EPOCHS.map((e) => JSON.stringify({ epoch: e, test_acc: acc(e), training_iteration: e + 1 })).join('\n') + '\n')
  }
  await ok(zoo(a, ['import', src, '--prefix', 'mz']), 'import')
  // the promoting clone's answer
  assert.deepEqual(names(await ok(zoo(a, QUERY), 'find in the promoting clone')), [T0, T1])
  await ok(zoo(a, ['push']), 'push')
})

after(async () => { await rm(work, { recursive: true, force: true }) })

/** The checkpoint node CIDs the manifests of a clone link. */
async function nodesOf(clone: string): Promise<CID[]> {
  const out: CID[] = []
  for (const t of [T0, T1, T2]) out.push(CID.parse((JSON.parse(await readFile(join(clone, 'models', t, 'v1', 'manifest.json'), 'utf8')) as { checkpoints: { node: string } }).checkpoints.node))
  return out
}

describe('history in a lazy clone', () => {
  it('a find on history fetches the checkpoint nodes from the zoo remote, answers as the promoting clone does, and keeps the history', async () => {
    const c = join(work, 'lazy')
    await ok(zoo(work, ['clone', '--lazy', bare, c]), 'lazy clone')
    assert.deepEqual(names(await ok(zoo(c, QUERY), 'find on history')), [T0, T1])
    assert.deepEqual(names(await ok(zoo(c, ['find', 'epochs=4', '--sort', 'seed', '--json']), 'find on epochs')), [T0, T1, T2])
    // fetched for the catalog only: a node is stored only after what it links to (invariant 2)
    const store = await LocalStore.open(join(c, '.git', 'zoo'))
    try { for (const n of await nodesOf(c)) assert.equal(await store.has(n), false, `${n} was stored ahead of its files`) } finally { await store.close() }
    // the catalog keeps the history: the next query needs no zoo remote
    await rename(objects, `${objects}-away`)
    try {
      assert.deepEqual(names(await ok(zoo(c, QUERY), 'find on history, zoo remote away')), [T0, T1])
    } finally { await rename(`${objects}-away`, objects) }
    // and a fetch still completes the store
    await ok(zoo(c, ['fetch']), 'fetch')
    await ok(zoo(c, ['verify']), 'verify')
  })

  it('with the zoo remote unreachable a find on history fails naming the models and the fix; other queries answer', async () => {
    const c = join(work, 'offline')
    await ok(zoo(work, ['clone', '--lazy', bare, c]), 'lazy clone')
    await rename(objects, `${objects}-away`)
    try {
      const r = await zoo(c, QUERY)
      assert.equal(r.code, 3, r.stderr)
      assert.deepEqual(JSON.parse(r.stdout), { error: { code: 'E_HISTORY_UNAVAILABLE', message: JSON.parse(r.stdout).error.message } })
      assert.match(r.stderr, /the history of 3 models is not here: their checkpoint nodes are not in the local store and no zoo remote gave them \(origin \(.*\): zoo remote origin at .*: the folder does not exist/)
      assert.ok(r.stderr.includes(`${T0}@v1, ${T1}@v1, ${T2}@v1;`), r.stderr)
      assert.ok(r.stderr.includes(`run it again once the zoo remote is reachable, or fetch those models with \`git zoo fetch ${T0}@v1 ${T1}@v1 ${T2}@v1\``), r.stderr)
      // a query without history needs no node
      assert.deepEqual(names(await ok(zoo(c, ['find', 'checkpoints=4', '--sort', 'seed', '--json']), 'find without history')), [T0, T1, T2])
    } finally { await rename(`${objects}-away`, objects) }
    assert.deepEqual(names(await ok(zoo(c, QUERY), 'find on history, zoo remote back')), [T0, T1])
  })

  it('in rounds of one version each fetched history stays in the catalog; when the cache cannot be written the query fails naming them instead of answering without them', async () => {
    const { openCatalog } = await import('../src/catalog/catalog.js')
    const { withHistory } = await import('../src/cli/catalog-history.js')
    const ctx = processCtx()
    // the Io of an in-process call: no terminal, no stdin (withHistory reads neither)
    const io = { cwd: '', env: ctx.env, host: ctx.host, out: () => {}, err: () => {}, tty: false } as unknown as Io
    const unfetched = async (c: string): Promise<number> => {
      const o = await openCatalog({ cwd: c, env: ctx.env, history: true })
      try { return o.file.unfetched().length } finally { o.file.close() }
    }
    // a writable cache: three rounds, each reading one more row into the cache the next starts from
    const c = join(work, 'rounds')
    await ok(zoo(work, ['clone', '--lazy', bare, c]), 'lazy clone')
    assert.equal(await unfetched(c), 3)
    const got = await withHistory(await openCatalog({ cwd: c, env: ctx.env, history: true }), { ...io, cwd: c }, 1)
    try { assert.deepEqual(got.file.unfetched(), [], 'every row has its history') } finally { got.file.close() }
    await rename(objects, `${objects}-away`)
    try {
      assert.deepEqual(names(await ok(zoo(c, QUERY), 'find on history, zoo remote away')), [T0, T1])
    } finally { await rename(`${objects}-away`, objects) }

    // a cache that cannot be written (its folder is a file): each round rebuilds from git alone
    const d = join(work, 'rounds-ro')
    await ok(zoo(work, ['clone', '--lazy', bare, d]), 'lazy clone')
    await rm(join(d, '.zoo', 'cache'), { recursive: true, force: true })
    await writeFile(join(d, '.zoo', 'cache'), 'not a folder\n')
    await assert.rejects(withHistory(await openCatalog({ cwd: d, env: ctx.env, history: true }), { ...io, cwd: d }, 1), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_HISTORY_UNAVAILABLE')
      // the last round's row is in memory; the two before it were read again without their nodes
      assert.match(err.message, /^the history of 2 models was fetched but could not be kept in the catalog \(its cache file .*catalog\.bin could not be written/)
      assert.match(err.message, /make that file writable and run the query again/)
      return true
    })
    // in one round (the default size) the answer comes from memory
    assert.deepEqual(names(await ok(zoo(d, QUERY), 'find on history with an unwritable cache')), [T0, T1])
  })

  it('a clone that is not lazy and has not fetched the models is told to fetch them; after the fetch the same query answers', async () => {
    const c = join(work, 'plain')
    await git(work, 'clone', '-q', bare, c) // git alone: the zoo's objects are not fetched
    const r = await zoo(c, QUERY)
    assert.equal(r.code, 3, r.stderr)
    assert.ok(r.stderr.includes(`their checkpoint nodes are not in the local store (this clone has not fetched them): ${T0}@v1, ${T1}@v1, ${T2}@v1; `
      + `a query on history needs them: fetch those models with \`git zoo fetch ${T0}@v1 ${T1}@v1 ${T2}@v1\``), r.stderr)
    await ok(zoo(c, ['fetch', `${T0}@v1`, `${T1}@v1`, `${T2}@v1`]), 'fetch')
    assert.deepEqual(names(await ok(zoo(c, QUERY), 'find on history after the fetch')), [T0, T1])
  })

  it('the query server declines a find that would fetch history (it would use its own credentials): node answers it', { skip: existsSync(join(ROOT, 'dist', 'front', 'git-zoo')) ? false : 'dist/front/git-zoo is not built' }, async () => {
    const c = join(work, 'served')
    await ok(zoo(work, ['clone', '--lazy', bare, c]), 'lazy clone')
    const xdg = await mkdtemp(join(tmpdir(), 'zoo-xdg-'))
    await chmod(xdg, 0o700)
    const env = { XDG_RUNTIME_DIR: xdg, GIT_ZOO_SERVER: '1', GIT_ZOO_SERVER_WAIT: '30000' }
    const server = spawn(process.execPath, [BIN, 'serve'], { cwd: tmpdir(), env: { ...process.env, ...env }, stdio: 'ignore' })
    const status = async (): Promise<{ running: boolean; served: number }> => JSON.parse((await ok(zoo(tmpdir(), ['server', 'status', '--json'], env), 'server status')).stdout) as { running: boolean; served: number }
    try {
      for (const end = Date.now() + 30_000; !(await status()).running;) {
        assert.ok(Date.now() < end, 'the server did not answer within 30 s')
        await new Promise((r) => setTimeout(r, 25))
      }
      const r = await run(join(ROOT, 'bin', 'git-zoo'), QUERY, { cwd: c, env })
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(names(r), [T0, T1])
      assert.equal((await status()).served, 0, 'declined: node answered')
      // the history is in the catalog now: a served find on it needs no network and is answered there
      assert.deepEqual(await run(join(ROOT, 'bin', 'git-zoo'), QUERY, { cwd: c, env }), await zoo(c, QUERY))
      assert.equal((await status()).served, 1)
    } finally {
      server.kill('SIGKILL')
      await rm(xdg, { recursive: true, force: true })
    }
  })
})
