/**
 * The house rules, checked: the layer table of spec/architecture.md enforced by dependency-cruiser
 * (and shown to fail on a reaching import), `process` read only by the entry points, the Repo's
 * environment reaching every git it runs, one reader of .zoo/config.json, the one commit path
 * (eval under require_signed), CSV metrics through csv-parse, and the library API imported by name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, appendFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { ROOT, git, processCtx, run, tempRepo, zoo } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { encodeNpy } from '../src/demo/data.js'
import { Repo } from '../src/repo.js'
import { dataset, permModel } from './eval-fixtures.js'

const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs')

function depcruise(cwd: string): ReturnType<typeof run> {
  return run(process.execPath, [DEPCRUISE, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd })
}

function weights(seed: number): Uint8Array {
  return encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [64], data: new Uint8Array(new Float32Array(64).map((_, i) => Math.sin(i + seed)).buffer) }])
}

// ---- process.* only in entry points ----

/** Files of src/ that may touch `process`: the entry points (spec/architecture.md, "The process"). */
const PROCESS_ALLOWED = [/^src\/cli\//, /^src\/host\.ts$/, /^src\/index\.ts$/, /^src\/demo\/run\.ts$/]

/** `file:line` of each use of the process object in code (comments skipped) outside the allowed files. */
function processUses(files: Array<{ path: string; text: string }>): string[] {
  const out: string[] = []
  for (const f of files) {
    if (PROCESS_ALLOWED.some((r) => r.test(f.path))) continue
    f.text.split('\n').forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '')
      if (/^\s*(\*|\/\*)/.test(code)) return
      if (/\bprocess\.[A-Za-z_$]|['"]node:process['"]|\bglobalThis\.process\b|\bprocess\s*\[/.test(code)) out.push(`${f.path}:${i + 1}: ${line.trim()}`)
    })
  }
  return out
}

async function sourceFiles(dir: string): Promise<Array<{ path: string; text: string }>> {
  const out: Array<{ path: string; text: string }> = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      if (e.isDirectory()) await walk(full)
      else if (e.name.endsWith('.ts')) out.push({ path: relative(ROOT, full).split('\\').join('/'), text: await readFile(full, 'utf8') })
    }
  }
  await walk(dir)
  return out
}

test('process.* is touched only by the entry points (cli, host.ts, index.ts, demo/run.ts)', async () => {
  const files = await sourceFiles(join(ROOT, 'src'))
  assert.ok(files.length > 100)
  assert.deepEqual(processUses(files), [])
  // and the scan does catch a use (so the assertion above can fail)
  assert.deepEqual(processUses([
    { path: 'src/cas/x.ts', text: "/** process.env in a comment is fine */\nconst e = process.env.HOME // reaching\nimport { pid } from 'node:process'\n" },
    { path: 'src/cli/main.ts', text: 'process.exitCode = 1\n' },
  ]), ["src/cas/x.ts:2: const e = process.env.HOME // reaching", "src/cas/x.ts:3: import { pid } from 'node:process'"])
})

// ---- the import-boundary check ----

test('dependency-cruiser: src/ keeps the layer table of spec/architecture.md', async () => {
  const r = await depcruise(ROOT)
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout + r.stderr, /no dependency violations found/)
})

test('dependency-cruiser fails on a reaching import, a command importing a command, a cycle, a Host made below the CLI, a cyclic or incomplete table', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-layers-'))
  try {
    await cp(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
    await mkdir(join(dir, 'spec'))
    await cp(join(ROOT, 'spec', 'architecture.md'), join(dir, 'spec', 'architecture.md'))
    for (const f of ['tsconfig.json', '.dependency-cruiser.cjs']) await cp(join(ROOT, f), join(dir, f))
    // formats may import only errors.ts
    await appendFile(join(dir, 'src/formats/npy.ts'), "\nimport { version } from '../version.js'\nexport const reaching = version\n")
    await appendFile(join(dir, 'src/cli/commands/ls.ts'), "\nimport { command as get } from './get.js'\nexport const other = get\n")
    // errors.ts -> repo.ts -> errors.ts
    await appendFile(join(dir, 'src/errors.ts'), "\nimport { ZOO_DIR } from './repo.js'\nexport const cyc = ZOO_DIR\n")
    await appendFile(join(dir, 'src/zoo/gc.ts'), "\nimport { processHost } from '../host.js'\nexport const made = processHost\n")
    const r = await depcruise(dir)
    const out = r.stdout + r.stderr
    assert.notEqual(r.code, 0, out)
    assert.match(out, /layer:formats: src\/formats\/npy\.ts → src\/version\.ts/)
    assert.match(out, /command-imports-command: src\/cli\/commands\/ls\.ts → src\/cli\/commands\/get\.ts/)
    assert.match(out, /no-circular: src\/errors\.ts → /)
    assert.match(out, /host-made-by-entry-points: src\/zoo\/gc\.ts → src\/host\.ts/)
    // a table whose rows import each other in a circle stops the check, naming the cycle
    const req = createRequire(join(dir, 'x.cjs'))
    const spec = join(dir, 'spec', 'architecture.md')
    const table = await readFile(spec, 'utf8')
    await writeFile(spec, table.replace(/^(\| `cas` \|.*\| )`errors.ts`/m, '$1`manifest`, `errors.ts`'))
    assert.throws(() => req('./.dependency-cruiser.cjs'), /the layer table has a cycle: (cas -> manifest -> cas|manifest -> cas -> manifest)/)
    delete req.cache[req.resolve('./.dependency-cruiser.cjs')]
    // a folder the table does not know stops it too, saying what to add
    await writeFile(spec, table)
    await mkdir(join(dir, 'src', 'newthing'))
    assert.throws(() => req('./.dependency-cruiser.cjs'), /the layer table has no row for src\/newthing; add one/)
  } finally { await rm(dir, { recursive: true, force: true }) }
})

// ---- Repo and config ----

test("a Repo's environment reaches the git it runs (zoo.store from GIT_CONFIG_* given only to Repo.open)", async () => {
  const { dir, cleanup } = await tempRepo('zoo-house-')
  try {
    const store = join(dir, 'elsewhere')
    const env = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'zoo.store', GIT_CONFIG_VALUE_0: store }
    assert.equal(process.env.GIT_CONFIG_COUNT, undefined, 'this process does not carry it')
    assert.equal(await (await Repo.open(dir, processCtx(env))).storeRoot(), store)
    assert.equal(await (await Repo.open(dir, processCtx())).storeRoot(), join(dir, '.git', 'zoo'))
  } finally { await cleanup() }
})

test('a broken .zoo/config.json is E_CONFIG with a fix for every command that reads it (remote add no longer crashes)', async () => {
  const { dir, cleanup } = await tempRepo('zoo-house-')
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await writeFile(join(dir, '.zoo/config.json'), '{ "remotes": ')
    await writeFile(join(dir, 'w.safetensors'), weights(3))
    for (const args of [['remote', 'add', 'origin', '../store'], ['remote', 'list'], ['add', 'w.safetensors', '--name', 'm']]) {
      const r = await zoo(dir, args)
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^git zoo: \.zoo\/config\.json is not valid JSON \(.*\); fix it by hand or restore it with `git checkout -- \.zoo\/config\.json`\n$/)
    }
    await writeFile(join(dir, '.zoo/config.json'), '[1]\n')
    const r = await zoo(dir, ['remote', 'add', 'origin', '../store'])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /\.zoo\/config\.json is not a JSON object/)
  } finally { await cleanup() }
})

// ---- the one commit path ----

test('eval under require_signed: refused before evaluating when git cannot sign; a failed signing leaves nothing behind', async () => {
  const { dir, cleanup } = await tempRepo('zoo-house-')
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'model.onnx'), permModel())
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, 8]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(BigInt64Array.from(y, (v) => BigInt(v)), [n]))
    await writeFile(join(dir, '.gitignore'), '.zoo/cache/\nmodel.onnx\nd.*.npy\n')
    await git(dir, 'add', '.gitignore', '.zoo')
    await git(dir, 'commit', '-q', '-m', 'zoo')
    assert.equal((await zoo(dir, ['add', 'model.onnx', '--name', 'cls/m'])).code, 0)
    const cfg = JSON.parse(await readFile(join(dir, '.zoo/config.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, '.zoo/config.json'), JSON.stringify({ ...cfg, policy: { require_signed: true } }, null, 2) + '\n')
    await git(dir, 'commit', '-q', '-am', 'require signed commits')
    const head = (await git(dir, 'rev-parse', 'HEAD')).trim()

    const r = await zoo(dir, ['eval', 'cls/m', '--data', 'd.x.npy'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /requires signed promotions .* but git has no signing key/)
    assert.doesNotMatch(r.stdout, /accuracy/, 'refused before the evaluation ran')
    await assert.rejects(stat(join(dir, 'models/cls/m/v1/evals')))
    // a key git cannot use: the commit fails, the record is removed and nothing stays staged
    await git(dir, 'config', 'gpg.format', 'ssh')
    await git(dir, 'config', 'user.signingkey', join(dir, 'no-such-key.pub'))
    const broken = await zoo(dir, ['eval', 'cls/m', '--data', 'd.x.npy'])
    assert.equal(broken.code, 1, broken.stderr)
    assert.match(broken.stderr, /the evaluation commit was refused, so nothing was recorded/)
    assert.equal((await git(dir, 'rev-parse', 'HEAD')).trim(), head)
    assert.equal(await git(dir, 'status', '--porcelain'), '')
    await assert.rejects(stat(join(dir, 'models/cls/m/v1/evals')), 'the evals/ folder it created is gone too')
    // without recording, nothing is committed, so nothing needs signing
    assert.equal((await zoo(dir, ['eval', 'cls/m', '--data', 'd.x.npy', '--no-record'])).code, 0)
  } finally { await cleanup() }
})

// ---- metrics CSV ----

test('a progress.csv with a quoted comma ("[64, 32]") imports; its numeric columns become the history', async () => {
  const { dir, cleanup } = await tempRepo('zoo-house-')
  const runs = await mkdtemp(join(tmpdir(), 'zoo-house-runs-'))
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    const run = join(runs, 'mlp-a')
    for (const e of [0, 1]) {
      await mkdir(join(run, `checkpoint_00000${e}`), { recursive: true })
      await writeFile(join(run, `checkpoint_00000${e}`, 'model.safetensors'), weights(e))
    }
    await writeFile(join(run, 'progress.csv'), 'epoch,test_acc,hidden,note\n0,0.5,"[64, 32]","warm, up"\n1,0.75,"[64, 32]",done\n')
    const r = await zoo(dir, ['import', runs, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { promoted: number }).promoted, 1)
    // a trajectory's history is in its checkpoint node: `show --json` reads it
    const m = JSON.parse((await zoo(dir, ['show', 'mlp-a@v1', '--json'])).stdout) as { metrics: Record<string, number>; history: Array<Record<string, number>> }
    assert.deepEqual(m.metrics, { test_acc: 0.75 })
    assert.deepEqual(m.history, [{ epoch: 0, test_acc: 0.5 }, { epoch: 1, test_acc: 0.75 }])
    // a row with a cell too many is still refused, naming the file
    await writeFile(join(runs, 'bad.csv'), 'epoch,test_acc\n0,0.5,9\n')
    await writeFile(join(runs, 'w.safetensors'), weights(7))
    const bad = await zoo(dir, ['add', join(runs, 'w.safetensors'), '--name', 'bad', '--metrics', join(runs, 'bad.csv')])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /bad\.csv is not valid CSV: .*line 2/)
  } finally {
    await cleanup()
    await rm(runs, { recursive: true, force: true })
  }
})

// ---- the library API ----

test("the library: import { Zoo } from 'git-zoo' resolves through package.json exports and runs add, get, find, lineage", async () => {
  const { dir, cleanup } = await tempRepo('zoo-house-')
  const proj = await mkdtemp(join(tmpdir(), 'zoo-house-lib-'))
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await writeFile(join(dir, '.gitignore'), '.zoo/cache/\n*.safetensors\nout/\n')
    await git(dir, 'add', '.gitignore', '.zoo')
    await git(dir, 'commit', '-q', '-m', 'zoo')
    await writeFile(join(dir, 'base.safetensors'), weights(1))
    await writeFile(join(dir, 'ft.safetensors'), weights(2))
    await mkdir(join(proj, 'node_modules'))
    await symlink(ROOT, join(proj, 'node_modules', 'git-zoo'), 'dir')
    await writeFile(join(proj, 'package.json'), '{ "type": "module" }\n')
    await writeFile(join(proj, 'use.mjs'), `
      import { Zoo, ZooError } from 'git-zoo'
      const zoo = await Zoo.open(process.argv[2])
      const base = await zoo.add('base.safetensors', { name: 'lib/base', seed: 1, dataset: 'toy', params: { lr: 0.1 } })
      const ft = await zoo.add(['ft.safetensors'], { name: 'lib/ft', seed: 2, dataset: 'toy', parents: ['lib/base'] })
      const got = await zoo.get('lib/ft@v1', { out: 'out' })
      const found = await zoo.find(['dataset=toy', 'seed>1'])
      const all = await zoo.find([], { sort: '-seed' })
      const lineage = await zoo.lineage('lib/base')
      let missing
      try { await zoo.get('lib/nope') } catch (err) { missing = { isZooError: err instanceof ZooError, code: err.code } }
      process.stdout.write(JSON.stringify({ base, ft, got, found, all: all.models.map((m) => m.name), lineage, missing }))
    `)
    const r = await run(process.execPath, [join(proj, 'use.mjs'), dir], { cwd: proj })
    assert.equal(r.code, 0, r.stderr)
    const o = JSON.parse(r.stdout)
    assert.equal(o.base.name, 'lib/base'); assert.equal(o.base.version, 1)
    assert.match(o.base.commit, /^[0-9a-f]{40}$/)
    assert.equal((await git(dir, 'rev-parse', 'HEAD')).trim(), o.ft.commit)
    assert.equal(o.ft.manifest.parents[0].seal, o.base.seal)
    assert.deepEqual(await readFile(join(dir, 'out', 'ft.safetensors')), Buffer.from(weights(2)))
    assert.deepEqual(o.got.files.map((f: { path: string }) => f.path), ['ft.safetensors'])
    assert.deepEqual(o.found.models.map((m: { name: string }) => m.name), ['lib/ft'])
    assert.deepEqual(o.all, ['lib/ft', 'lib/base'])
    assert.deepEqual(o.lineage.edges, [{ from: 'lib/base@v1', to: 'lib/ft@v1', relation: 'fine-tune' }])
    assert.deepEqual(o.missing, { isZooError: true, code: 'E_UNKNOWN_MODEL' }, 'a model name the zoo does not have (spec/errors.md)')
    // what the CLI sees is the same zoo
    assert.match((await zoo(dir, ['ls'])).stdout, /lib\/base[\s\S]*lib\/ft/)
    // the types come with it: a TypeScript script type-checks against them (an untyped export
    // would leave the @ts-expect-error unused, which tsc reports)
    await writeFile(join(proj, 'use.ts'), [
      "import { Zoo, type AddResult, type ModelSummary } from 'git-zoo'",
      "const zoo = await Zoo.open('.')",
      "const r: AddResult = await zoo.add('m.safetensors', { name: 'a', seed: 1, parents: [{ ref: 'b', relation: 'soup' }] })",
      'const v: number = r.version',
      "const found: ModelSummary[] = (await zoo.find(['seed=1'], { sort: '-seed', limit: 1 })).models",
      '// @ts-expect-error the name is required',
      "await zoo.add('m.safetensors', { seed: 1 })",
      'export { v, found }',
    ].join('\n'))
    await writeFile(join(proj, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
      files: ['use.ts'],
    }))
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: proj })
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr)
  } finally {
    await cleanup()
    await rm(proj, { recursive: true, force: true })
  }
})
