/** End to end: init / add / get / verify / gc through the real CLI and real git, in temp repos. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, readdir, mkdir, symlink, open, stat, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { tempRepo, zoo, git, BIN } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'

function tensors(seed: number, count: number, floats: number, change: Set<number> = new Set()): Uint8Array {
  const list = []
  for (let i = 0; i < count; i++) {
    const data = new Float32Array(floats)
    for (let j = 0; j < floats; j++) data[j] = Math.sin((i + 1) * 1000 + j + (change.has(i) ? seed : 0))
    list.push({ name: `layers.${String(i).padStart(2, '0')}.weight`, dtype: 'F32', shape: [floats], data: new Uint8Array(data.buffer) })
  }
  return encodeSafetensors(list)
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function packsOf(dir: string): Promise<string[]> {
  try { return (await readdir(join(dir, '.git', 'zoo', 'packs'))).sort() } catch { return [] }
}

test('init is idempotent, creates .zoo/ and keeps a hook the user wrote', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await writeFile(join(dir, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\necho user-hook-ran >&2\n', { mode: 0o755 })
    assert.equal((await zoo(dir, ['init'])).code, 0)
    const hook = await readFile(join(dir, '.git', 'hooks', 'pre-commit'), 'utf8')
    assert.match(hook, /git-zoo pre-commit hook/)
    assert.equal(await readFile(join(dir, '.git', 'hooks', 'pre-commit.zoo-chained'), 'utf8'), '#!/bin/sh\necho user-hook-ran >&2\n')
    const again = await zoo(dir, ['init', '--json'])
    assert.equal(again.code, 0)
    const j = JSON.parse(again.stdout)
    assert.deepEqual(j.created, [])
    assert.deepEqual(j.hooks.map((h: { action: string }) => h.action), ['unchanged', 'unchanged'])
    assert.ok((await stat(join(dir, '.zoo', 'config.json'))).isFile())
    assert.match(await readFile(join(dir, '.gitignore'), 'utf8'), /\.zoo\/cache\//)
  } finally { await cleanup() }
})

test('add, get, verify round trip; a second add makes v2 and dedups shared tensors', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    const v1 = tensors(1, 10, 64 * 1024)              // 10 tensors of 256 KiB
    await writeFile(join(dir, 'weights.bin'), v1)     // misleading name: sniffed by magic bytes
    await writeFile(join(dir, 'train.yaml'), 'lr: 0.1\nepochs: 3\n')
    await writeFile(join(dir, 'metrics.json'), JSON.stringify([{ epoch: 0, acc: 0.5 }, { epoch: 1, acc: 0.75 }]))
    const a = await zoo(dir, ['add', 'weights.bin', '--name', 'mlp/demo', '--config', 'train.yaml', '--metrics', 'metrics.json',
      '--seed', '3', '--dataset', 'glyphs@1', '--param', 'lr=0.1', '--json'])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(a.stderr, '')
    const r1 = JSON.parse(a.stdout)
    assert.equal(r1.version, 1)
    assert.equal(r1.files[0].sha256, sha(v1))
    assert.ok(r1.stored_bytes >= v1.length - 1024 && r1.stored_bytes <= v1.length + 1024, `stored ${r1.stored_bytes}`)
    const man = JSON.parse(await readFile(join(dir, 'models/mlp/demo/v1/manifest.json'), 'utf8'))
    assert.equal(man.files[0].format, 'safetensors')
    assert.deepEqual(man.metrics, { acc: 0.75 })
    assert.equal(man.seed, 3)
    assert.equal(await readFile(join(dir, 'models/mlp/demo/v1/train.yaml'), 'utf8'), 'lr: 0.1\nepochs: 3\n')
    const log = await git(dir, 'log', '-1', '--format=%s%n%b')
    assert.match(log, /zoo: promote mlp\/demo@v1/)
    assert.match(log, new RegExp(`Zoo-Seal: ${r1.seal}`))
    // the working tree holds no weights: only manifest, config snapshot and card are tracked
    assert.deepEqual((await git(dir, 'ls-files', 'models')).trim().split('\n').sort(),
      ['models/mlp/demo/v1/README.md', 'models/mlp/demo/v1/manifest.json', 'models/mlp/demo/v1/train.yaml'])

    // fine-tune: 1 of 10 tensors changes
    const v2 = tensors(2, 10, 64 * 1024, new Set([4]))
    await writeFile(join(dir, 'weights.bin'), v2)
    const b = await zoo(dir, ['add', 'weights.bin', '--name', 'mlp/demo', '--json'])
    assert.equal(b.code, 0, b.stderr)
    const r2 = JSON.parse(b.stdout)
    assert.equal(r2.version, 2)
    const changed = 64 * 1024 * 4
    assert.ok(r2.stored_bytes <= changed * 1.1 + 2048, `stored ${r2.stored_bytes} for ${changed} changed bytes`)

    const g1 = await zoo(dir, ['get', 'mlp/demo@v1', '--out', 'out1'])
    assert.equal(g1.code, 0, g1.stderr)
    assert.equal(sha(await readFile(join(dir, 'out1', 'weights.bin'))), sha(v1))
    const g2 = await zoo(dir, ['get', 'mlp/demo', '--out', 'out2', '--json'])
    assert.equal(JSON.parse(g2.stdout).version, 2)
    assert.equal(sha(await readFile(join(dir, 'out2', 'weights.bin'))), sha(v2))
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 0, v.stdout + v.stderr)
    assert.deepEqual(JSON.parse(v.stdout), { ok: true, problems: [] })
  } finally { await cleanup() }
})

test('a damaged object is named by verify and refused by get, which writes nothing', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    const bytes = tensors(1, 4, 32 * 1024)
    await writeFile(join(dir, 'm.safetensors'), bytes)
    assert.equal((await zoo(dir, ['add', 'm.safetensors', '--name', 'dmg'])).code, 0)
    const [pack] = (await packsOf(dir)).filter((n) => n.endsWith('.pack'))
    const path = join(dir, '.git', 'zoo', 'packs', pack!)
    const fd = await open(path, 'r+')
    const size = (await fd.stat()).size
    const one = Buffer.alloc(1)
    await fd.read(one, 0, 1, size - 1000)
    one[0] ^= 0xff
    await fd.write(one, 0, 1, size - 1000)
    await fd.close()
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 1)
    const j = JSON.parse(v.stdout)
    assert.equal(j.ok, false)
    assert.equal(j.problems.length, 1)
    assert.equal(j.problems[0].model, 'dmg@v1')
    assert.equal(j.problems[0].path, 'm.safetensors')
    assert.match(j.problems[0].object, /^bafk/)
    assert.equal(j.problems[0].problem, 'corrupt')
    const g = await zoo(dir, ['get', 'dmg', '--out', 'out'])
    assert.equal(g.code, 1)
    assert.match(g.stderr, /does not match its CID/)
    await assert.rejects(readdir(join(dir, 'out')), /ENOENT/)
  } finally { await cleanup() }
})

test('bad input: clear message, exit 2, nothing written', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await writeFile(join(dir, 'w.bin'), randomBytes(1000))
    const head = await git(dir, 'rev-parse', 'HEAD')
    const cases: Array<[string[], RegExp]> = [
      [['add', 'missing.bin', '--name', 'x'], /cannot read missing.bin: no such file/],
      [['add', 'w.bin', '--name', 'Bad Name'], /invalid model name/],
      [['add', 'w.bin', '--name', '../up'], /invalid model name/],
      [['add', 'w.bin', '--name', 'a/v2'], /looks like a version/],
      [['add', 'w.bin'], /--name <model> is required/],
      [['add', 'w.bin', '--name', 'x', '--frobnicate'], /unknown flag --frobnicate/],
      [['add', 'w.bin', '--name', 'x', '--seed', 'abc'], /--seed takes a whole number/],
      [['get', 'nope/model@v0'], /invalid version/],
      [['frob'], /not a git zoo command/],
    ]
    for (const [args, msg] of cases) {
      const r = await zoo(dir, args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, msg)
    }
    assert.equal(await git(dir, 'rev-parse', 'HEAD'), head)
    assert.deepEqual(await packsOf(dir), [])
    const outside = await zoo('/', ['add', join(dir, 'w.bin'), '--name', 'x'])
    assert.equal(outside.code, 2)
    assert.match(outside.stderr, /not inside a git repository/)
    const missing = await zoo(dir, ['get', 'absent'])
    assert.equal(missing.code, 2, 'a model name the zoo does not have is a usage error')
    assert.match(missing.stderr, /model absent is not in this zoo/)
    for (const c of ['init', 'add', 'get', 'verify', 'gc']) {
      const h = await zoo(dir, [c, '--help'])
      assert.equal(h.code, 0)
      assert.match(h.stdout, new RegExp(`usage: git zoo ${c}`))
    }
  } finally { await cleanup() }
})

test('get never writes through a symlink in the output folder', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await writeFile(join(dir, 'w.bin'), randomBytes(5000))
    await mkdir(join(dir, 'elsewhere'))
    await mkdir(join(dir, 'sub'))
    await writeFile(join(dir, 'sub', 'w.bin'), randomBytes(10))
    assert.equal((await zoo(dir, ['add', 'sub', '--name', 'links'])).code, 0)
    await mkdir(join(dir, 'out'))
    await symlink(join(dir, 'elsewhere', 'target'), join(dir, 'out', 'w.bin'))
    const r = await zoo(dir, ['get', 'links', '--out', 'out'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /symbolic link/)
    assert.deepEqual(await readdir(join(dir, 'elsewhere')), [])
  } finally { await cleanup() }
})

/** Run `git zoo <args>` with GIT_ZOO_CRASH_AT=<point>: the process must die by SIGKILL at that point. */
function crashAt(point: string, args: string[], cwd: string): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, GIT_ZOO_CRASH_AT: point }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', rej)
    child.on('close', (_code, signal) => res({ signal, stderr }))
  })
}

test('kill -9 at each step of add leaves a valid store, and the same add then succeeds', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    // 24 MiB: over the worker-hashing threshold and several 4 MiB pack writes, under one 64 MiB pack
    const big = randomBytes(24 * 1024 * 1024)
    await writeFile(join(dir, 'big.bin'), big)
    const head = await git(dir, 'rev-parse', 'HEAD')
    const packs = async (): Promise<{ pack: string[]; idx: string[] }> => {
      const all = await packsOf(dir)
      return { pack: all.filter((n) => n.endsWith('.pack')), idx: all.filter((n) => n.endsWith('.idx')) }
    }
    const manifest = join(dir, 'models', 'crash', 'v1', 'manifest.json')
    const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false)
    const staged = async (): Promise<string> => (await git(dir, 'diff', '--cached', '--name-only')).trim()

    // mid-pack: chunks are in a pack file on disk, but no index makes them visible
    let c = await crashAt('add-mid-pack', ['add', 'big.bin', '--name', 'crash'], dir)
    assert.equal(c.signal, 'SIGKILL', c.stderr)
    assert.match(c.stderr, /crash point add-mid-pack/)
    let p = await packs()
    assert.equal(p.pack.length, 1)
    assert.deepEqual(p.idx, [], 'the interrupted pack has no index')
    assert.ok((await stat(join(dir, '.git', 'zoo', 'packs', p.pack[0]!))).size >= 4 * 1024 * 1024, 'chunks were written before the kill')
    assert.equal(await exists(manifest), false)
    let v = await zoo(dir, ['verify'])
    assert.equal(v.code, 0, v.stderr)

    // after-flush: every object durable and indexed; no manifest
    c = await crashAt('after-flush', ['add', 'big.bin', '--name', 'crash'], dir)
    assert.equal(c.signal, 'SIGKILL', c.stderr)
    p = await packs()
    // the next add indexes the killed run's pack (its records verified), then writes only the rest
    assert.equal(p.idx.length, 2, 'the recovered pack and the second run\'s pack are indexed')
    assert.equal(await exists(manifest), false)

    // after-write: manifest in the work tree, nothing staged; before-commit: staged, no commit
    c = await crashAt('after-write', ['add', 'big.bin', '--name', 'crash'], dir)
    assert.equal(c.signal, 'SIGKILL', c.stderr)
    assert.equal(await exists(manifest), true)
    assert.equal(await staged(), '')
    c = await crashAt('before-commit', ['add', 'big.bin', '--name', 'crash'], dir)
    assert.equal(c.signal, 'SIGKILL', c.stderr)
    assert.match(await staged(), /models\/crash\/v1\/manifest\.json/)
    assert.equal(await git(dir, 'rev-parse', 'HEAD'), head, 'no crash made a commit')
    v = await zoo(dir, ['verify'])
    assert.equal(v.code, 0, v.stderr)

    const a = await zoo(dir, ['add', 'big.bin', '--name', 'crash', '--json'])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(JSON.parse(a.stdout).version, 1)
    assert.equal(JSON.parse(a.stdout).stored_bytes, 0, 'every object was already durable from the after-flush run')
    assert.equal((await git(dir, 'status', '--porcelain', '--', 'models')).trim(), '')
    assert.equal((await git(dir, 'log', '--format=%s')).split('\n').filter((l) => l.startsWith('zoo: promote crash@')).length, 1)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    const g = await zoo(dir, ['get', 'crash', '--out', 'o'])
    assert.equal(g.code, 0, g.stderr)
    assert.equal(sha(await readFile(join(dir, 'o', 'big.bin'))), sha(big))
  } finally { await cleanup() }
})

test('gc removes only what no ref, index entry or recent write needs', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    // Safetensors files, so chunk boundaries are fixed by the tensors (spec/chunking.md 2: a segment
    // of at most max bytes is one chunk), not by where content-defined cuts land in random bytes:
    // drop is a header and 3 tensors of 160 000 bytes, so 4 chunks and one file node, none shared
    // with keep (other tensor count, other values).
    const keep = tensors(1, 4, 50_000)
    const drop = tensors(7, 3, 40_000, new Set([0, 1, 2]))
    await writeFile(join(dir, 'keep.safetensors'), keep)
    await writeFile(join(dir, 'drop.safetensors'), drop)
    assert.equal((await zoo(dir, ['add', 'keep.safetensors', '--name', 'keep'])).code, 0)
    await git(dir, 'checkout', '-q', '-b', 'experiment')
    const added = await zoo(dir, ['add', 'drop.safetensors', '--name', 'drop', '--json'])
    assert.equal(added.code, 0, added.stderr)
    const dropStored = JSON.parse(added.stdout).stored_bytes as number
    assert.ok(dropStored > drop.length && dropStored < drop.length + 4096, `drop stored ${dropStored} bytes: its ${drop.length} bytes of chunks and one small node`)
    await git(dir, 'checkout', '-q', 'main')
    // recent packs are protected by the grace period
    const young = JSON.parse((await zoo(dir, ['gc', '--json'])).stdout)
    assert.equal(young.removed_objects, 0)
    // while the branch exists, nothing is garbage
    const kept = JSON.parse((await zoo(dir, ['gc', '--grace', '0', '--json'])).stdout)
    assert.equal(kept.removed_objects, 0)
    await git(dir, 'branch', '-q', '-D', 'experiment')
    await git(dir, 'reflog', 'expire', '--expire=now', '--all')
    const dry = JSON.parse((await zoo(dir, ['gc', '--grace', '0', '--dry-run', '--json'])).stdout)
    assert.equal(dry.removed_objects, 5, 'the header chunk, 3 tensor chunks and the file node of drop')
    assert.equal(dry.removed_bytes, dropStored, 'exactly what adding drop wrote')
    assert.equal(dry.kept_objects, kept.kept_objects - 5)
    const real = JSON.parse((await zoo(dir, ['gc', '--grace', '0', '--json'])).stdout)
    assert.equal(real.removed_objects, 5)
    assert.equal(real.removed_bytes, dropStored)
    const after = JSON.parse((await zoo(dir, ['gc', '--grace', '0', '--dry-run', '--json'])).stdout)
    assert.equal(after.removed_objects, 0, 'nothing left to remove')
    assert.equal(after.kept_objects, kept.kept_objects - 5)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    assert.equal((await zoo(dir, ['get', 'keep', '--out', 'o'])).code, 0)
    assert.equal(sha(await readFile(join(dir, 'o', 'keep.safetensors'))), sha(keep))
    await rm(join(dir, 'o'), { recursive: true })
  } finally { await cleanup() }
})

test('ls and find mark retired versions; find skips them unless --include-retired', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await git(dir, 'commit', '-qm', 'zoo')
    await writeFile(join(dir, 'w.bin'), randomBytes(2000))
    assert.equal((await zoo(dir, ['add', 'w.bin', '--name', 'old', '--param', 'k=1'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'w.bin', '--name', 'kept', '--param', 'k=1'])).code, 0)
    const r = await zoo(dir, ['retire', 'old@v1', '--reason', 'trained on the test split'])
    assert.equal(r.code, 0, r.stderr)
    const ls = JSON.parse((await zoo(join(dir, 'models'), ['ls', '--json'])).stdout)
    const byName = Object.fromEntries(ls.models.map((m: { name: string }) => [m.name, m]))
    assert.equal(byName.old.retired, true)
    assert.equal(byName.kept.retired, undefined)
    // find skips retired versions unless asked (spec/catalog.md); ls lists every model
    const table = await zoo(dir, ['find', 'params.k=1', '--include-retired'])
    assert.match(table.stdout, /retired \(see `git zoo log`\): old@v1\n/)
    const served = await zoo(dir, ['find', 'params.k=1'])
    assert.match(served.stdout, /kept@v1/)
    assert.doesNotMatch(served.stdout, /old@v1/)
  } finally { await cleanup() }
})
