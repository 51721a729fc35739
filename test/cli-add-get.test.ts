/**
 * `add` details and `get` details through the real binary and real git:
 *   - `add <run folder>` records the factors of its config.json the way `import` of the same folder
 *     does (seed, dataset, arch, params), keeps the config beside the manifest rather than as a
 *     weights file, and flags win over it;
 *   - `add --code <path>` (and `code` in .zoo/config.json) records another repository's remote URL
 *     (without credentials), commit and dirty state; dirty is refused without --allow-dirty;
 *   - `get` without --out writes ./<model>, prints the path, and git ignores it (`git add .` and a
 *     commit go through the hook); `get --file` writes one file.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, mkdir, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { createHash } from 'node:crypto'
import { initRepo, tempDir, zoo, git, gitRun, safetensorsBytes, type TestRepo } from './helpers-git.js'

let z: TestRepo
let work: { dir: string; cleanup: () => Promise<void> }
before(async () => {
  z = await initRepo()
  work = await tempDir('zoo-addget-')
  assert.equal((await zoo(z.dir, ['init', '-q'])).code, 0)
  await git(z.dir, 'commit', '-q', '-m', 'zoo')
})
after(async () => { await z.cleanup(); await work.cleanup() })

const manifest = async (dir: string, name: string, v: number): Promise<Record<string, any>> =>
  JSON.parse(await readFile(join(dir, 'models', ...name.split('/'), `v${v}`, 'manifest.json'), 'utf8'))

describe('add <run folder> reads its config', () => {
  it('records the factors import records, keeps config.json as the config, and flags win', async () => {
    const run = join(work.dir, 'runs', 'seed7')
    await mkdir(run, { recursive: true })
    await writeFile(join(run, 'model.safetensors'), safetensorsBytes(32, 1))
    const config = { seed: 7, dataset: 'cifar10', model: { type: 'resnet18' }, lr: 0.05, optim: { name: 'sgd', momentum: 0.9 } }
    await writeFile(join(run, 'config.json'), JSON.stringify(config))
    const r = await zoo(z.dir, ['add', run, '--name', 'runs/seed7'])
    assert.equal(r.code, 0, r.stderr)
    const m = await manifest(z.dir, 'runs/seed7', 1)
    assert.equal(m.seed, 7)
    assert.equal(m.dataset, 'cifar10')
    assert.equal(m.arch, 'resnet18')
    assert.deepEqual(m.params, { lr: 0.05, 'optim.name': 'sgd', 'optim.momentum': 0.9 })
    assert.deepEqual(m.files.map((f: { path: string }) => f.path), ['model.safetensors'], 'the config is not stored as a weights file')
    assert.equal(m.config.path, 'config.json')
    assert.equal(await readFile(join(z.dir, 'models/runs/seed7/v1/config.json'), 'utf8'), JSON.stringify(config))

    // import of the same folder into another zoo records the same factors
    const other = await initRepo()
    try {
      assert.equal((await zoo(other.dir, ['init', '-q'])).code, 0)
      await git(other.dir, 'commit', '-q', '-m', 'zoo')
      const imp = await zoo(other.dir, ['import', join(work.dir, 'runs')])
      assert.equal(imp.code, 0, imp.stderr)
      const [name] = (await readdir(join(other.dir, 'models'), { recursive: true })).filter((p) => p.endsWith('manifest.json'))
      const im = JSON.parse(await readFile(join(other.dir, 'models', name!), 'utf8'))
      for (const k of ['seed', 'dataset', 'arch', 'params', 'config']) assert.deepEqual(m[k], im[k], k)
    } finally { await other.cleanup() }

    // flags win over the config
    const f = await zoo(z.dir, ['add', run, '--name', 'runs/seed7', '--seed', '9', '--param', 'lr=0.1', '--arch', 'vit'])
    assert.equal(f.code, 0, f.stderr)
    const m2 = await manifest(z.dir, 'runs/seed7', 2)
    assert.equal(m2.seed, 9)
    assert.equal(m2.arch, 'vit')
    assert.equal(m2.params.lr, 0.1)
    assert.equal(m2.params['optim.name'], 'sgd')
  })

  it('a config.json that is not a JSON object is refused (exit 2, E_RUN_CONFIG), as in import', async () => {
    const run = join(work.dir, 'bad-run')
    await mkdir(run, { recursive: true })
    await writeFile(join(run, 'model.safetensors'), safetensorsBytes(8, 2))
    await writeFile(join(run, 'params.json'), '[1, 2]')
    const r = await zoo(z.dir, ['add', run, '--name', 'runs/bad'], { GIT_ZOO_DEBUG: '1' })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /params.json is not a JSON object of training settings/)
    assert.match(r.stderr, /^E_RUN_CONFIG /m)
  })
})

describe('add --code <path>', () => {
  let code: string
  let sha: string
  before(async () => {
    code = join(work.dir, 'trainer')
    await mkdir(code)
    await git(code, 'init', '-q', '-b', 'main')
    await writeFile(join(code, 'train.py'), 'print("train")\n')
    await git(code, 'add', 'train.py')
    await git(code, '-c', 'user.name=T', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', 'trainer')
    await git(code, 'remote', 'add', 'origin', 'https://user:secret@git.example.invalid/lab/trainer.git')
    sha = (await git(code, 'rev-parse', 'HEAD')).trim()
  })

  it('records that repository\'s remote (no credentials), commit and clean state; the Zoo-Code trailer agrees', async () => {
    await writeFile(join(work.dir, 'c1.safetensors'), safetensorsBytes(16, 3))
    const r = await zoo(z.dir, ['add', join(work.dir, 'c1.safetensors'), '--name', 'code/a', '--code', code])
    assert.equal(r.code, 0, r.stderr)
    const m = await manifest(z.dir, 'code/a', 1)
    assert.deepEqual(m.code, { repo: 'https://git.example.invalid/lab/trainer.git', commit: sha, dirty: false })
    assert.match(await git(z.dir, 'log', '-1', '--format=%B'), new RegExp(`^Zoo-Code: ${sha}$`, 'm'))
    const v = await zoo(z.dir, ['verify', '--signatures', '--json'])
    assert.deepEqual(JSON.parse(v.stdout).problems.filter((p: { problem: string }) => /Zoo-Code|code/.test(p.problem)), [])
  })

  it('a dirty code repository is refused (exit 1, E_DIRTY) naming it; --allow-dirty records the digest of its diff', async () => {
    await writeFile(join(code, 'train.py'), 'print("train harder")\n')
    const r = await zoo(z.dir, ['add', join(work.dir, 'c1.safetensors'), '--name', 'code/b', '--code', code], { GIT_ZOO_DEBUG: '1' })
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`the training code in ${code} has uncommitted changes`))
    assert.match(r.stderr, / M train.py/)
    assert.match(r.stderr, /^E_DIRTY /m)
    assert.equal((await gitRun(z.dir, ['cat-file', '-e', 'HEAD:models/code/b'])).code, 128, 'nothing promoted')
    const ok = await zoo(z.dir, ['add', join(work.dir, 'c1.safetensors'), '--name', 'code/b', '--code', code, '--allow-dirty'])
    assert.equal(ok.code, 0, ok.stderr)
    const m = await manifest(z.dir, 'code/b', 1)
    const diff = await git(code, 'diff', 'HEAD')
    assert.deepEqual(m.code, { repo: 'https://git.example.invalid/lab/trainer.git', commit: sha, dirty: true, diff_sha256: createHash('sha256').update(diff).digest('hex') })
    await git(code, 'checkout', '--', 'train.py')
  })

  it('a folder that is not a repository is a usage error (exit 2, E_CODE_REPO)', async () => {
    for (const dir of [work.dir, join(work.dir, 'nope')]) {
      const r = await zoo(z.dir, ['add', join(work.dir, 'c1.safetensors'), '--name', 'code/c', '--code', dir], { GIT_ZOO_DEBUG: '1', GIT_CEILING_DIRECTORIES: work.dir })
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /^E_CODE_REPO /m)
      assert.match(r.stderr, /--code .*(not inside a git work tree|no such folder)/)
    }
  })

  it('"code" in .zoo/config.json sets it once for the zoo', async () => {
    const cfgPath = join(z.dir, '.zoo/config.json')
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'))
    // a path relative to the zoo's top folder
    await writeFile(cfgPath, JSON.stringify({ ...cfg, code: relative(z.dir, code) }, null, 2))
    await git(z.dir, 'commit', '-q', '-m', 'code repository', '.zoo/config.json')
    const r = await zoo(z.dir, ['add', join(work.dir, 'c1.safetensors'), '--name', 'code/d'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await manifest(z.dir, 'code/d', 1)).code.commit, sha)
  })
})

describe('get', () => {
  it('without --out writes ./<model>, prints the path, and git ignores it: `git add .` and commit go through', async () => {
    const r = await zoo(z.dir, ['get', 'runs/seed7@v1'])
    assert.equal(r.code, 0, r.stderr)
    const out = join(z.dir, 'runs', 'seed7')
    assert.equal(r.stdout, `${out}\n`)
    assert.match(r.stderr, /^git zoo: wrote runs\/seed7@v1 \(1 file, .*, every byte verified\) to runs\/seed7; git ignores \/runs\/seed7\/ now \(.git\/info\/exclude\)$/m)
    assert.deepEqual(await readFile(join(out, 'model.safetensors')), safetensorsBytes(32, 1))
    assert.equal((await git(z.dir, 'status', '--porcelain')).trim(), '')
    await writeFile(join(z.dir, 'notes.txt'), 'notes\n')
    await git(z.dir, 'add', '.')
    assert.deepEqual((await git(z.dir, 'diff', '--cached', '--name-only')).trim().split('\n'), ['notes.txt'])
    const c = await gitRun(z.dir, ['commit', '-q', '-m', 'notes'])
    assert.equal(c.code, 0, c.stderr)
  })

  it('--file writes that one file and prints its path; an unknown path suggests the nearest', async () => {
    const run = join(work.dir, 'two')
    await mkdir(run)
    await writeFile(join(run, 'a.safetensors'), safetensorsBytes(8, 5))
    await writeFile(join(run, 'b.safetensors'), safetensorsBytes(8, 6))
    assert.equal((await zoo(z.dir, ['add', run, '--name', 'two'])).code, 0)
    const out = join(work.dir, 'one-file')
    const r = await zoo(z.dir, ['get', 'two', '--file', 'b.safetensors', '--out', out])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${join(out, 'b.safetensors')}\n`)
    assert.deepEqual(await readdir(out), ['b.safetensors'])
    assert.deepEqual(await readFile(join(out, 'b.safetensors')), safetensorsBytes(8, 6))
    const bad = await zoo(z.dir, ['get', 'two', '--file', 'b.safetensor', '--out', out])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /two@v1 has no file "b.safetensor"; did you mean "b.safetensors"\?/)
  })
})
