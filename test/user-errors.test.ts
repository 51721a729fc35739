/**
 * User mistakes end in a clear message and the exit status of spec/errors.md, never in
 * "internal error ... this is a bug" (exit 70): through the real CLI in real git repositories.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, tempRepo, zoo, type Run } from './cli.js'
import { safetensorsBytes } from './helpers-git.js'

function noBug(r: Run): void {
  assert.doesNotMatch(r.stderr, /internal error|This is a bug/, r.stderr)
}

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-usererr-')
  const init = await zoo(r.dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  await git(r.dir, 'commit', '-q', '-m', 'zoo init')
  return r
}

async function add(dir: string, name: string, fill: number): Promise<void> {
  const file = join(dir, '.git', `w${fill}.safetensors`)
  await writeFile(file, safetensorsBytes(64, fill))
  const r = await zoo(dir, ['add', file, '--name', name])
  assert.equal(r.code, 0, r.stderr)
}

describe('init with a hook it cannot chain', () => {
  it('refuses with E_HOOK_CONFLICT (exit 1), changes nothing, and works once the user resolves it', async () => {
    const { dir, cleanup } = await tempRepo('zoo-usererr-')
    try {
      const hooks = join(dir, '.git', 'hooks')
      await writeFile(join(hooks, 'pre-push'), '#!/bin/sh\necho mine\n', { mode: 0o755 })
      await writeFile(join(hooks, 'pre-push.zoo-chained'), '#!/bin/sh\necho older\n', { mode: 0o755 })
      const before = (await readdir(hooks)).sort()
      const r = await zoo(dir, ['init'], { GIT_ZOO_DEBUG: '1' })
      noBug(r)
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /your pre-push hook cannot be chained: both .*pre-push and .*pre-push\.zoo-chained exist/)
      assert.match(r.stderr, /run `git zoo init` again/)
      assert.match(r.stderr, /^E_HOOK_CONFLICT /m)
      assert.deepEqual((await readdir(hooks)).sort(), before, 'no hook installed or moved (pre-commit neither)')
      assert.equal(await readFile(join(hooks, 'pre-push'), 'utf8'), '#!/bin/sh\necho mine\n')
      assert.equal(await readFile(join(hooks, 'pre-push.zoo-chained'), 'utf8'), '#!/bin/sh\necho older\n')
      await rm(join(hooks, 'pre-push.zoo-chained'))
      const again = await zoo(dir, ['init'])
      assert.equal(again.code, 0, again.stderr)
      assert.equal(await readFile(join(hooks, 'pre-push.zoo-chained'), 'utf8'), '#!/bin/sh\necho mine\n')
      assert.match(await readFile(join(hooks, 'pre-push'), 'utf8'), /git-zoo/)
    } finally { await cleanup() }
  })
})

describe('a broken .zoo/config.json', () => {
  let z: { dir: string; cleanup: () => Promise<void> }
  before(async () => { z = await zooRepo() })
  after(async () => { await z.cleanup() })

  for (const [text, said] of [
    ['{ "remotes": { "origin": ', /\.zoo\/config\.json is not valid JSON .*git checkout -- \.zoo\/config\.json/],
    ['[1, 2]', /\.zoo\/config\.json is not a JSON object/],
    ['{ "remotes": ["s3://b/z"] }', /"remotes" is not an object of named remotes/],
    ['{ "remotes": { "origin": "s3://b/z" } }', /remote "origin" has no "url" string/],
  ] as const) {
    it(`remote add names the problem and leaves the file alone: ${text}`, async () => {
      const path = join(z.dir, '.zoo', 'config.json')
      await writeFile(path, text)
      const r = await zoo(z.dir, ['remote', 'add', 'nfs', '/srv/zoo'], { GIT_ZOO_DEBUG: '1' })
      noBug(r)
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, said)
      assert.match(r.stderr, /^E_CONFIG /m)
      assert.equal(await readFile(path, 'utf8'), text, 'the file is not rewritten')
      const list = await zoo(z.dir, ['remote', 'list'])
      noBug(list)
      assert.equal(list.code, 3, list.stderr)
    })
  }
})

describe('a bad .zoo/schema.json', () => {
  let z: { dir: string; cleanup: () => Promise<void> }
  before(async () => {
    z = await zooRepo()
    await writeFile(join(z.dir, '.git', 'w.safetensors'), safetensorsBytes(16))
  })
  after(async () => { await z.cleanup() })

  for (const [schema, said] of [
    [{ properties: { dataset: { pattern: '^([a-z' } } }, /the pattern for dataset is not a valid regular expression/],
    [{ properties: { seed: null } }, /the rule for seed is not an object/],
    [{ properties: { seed: { type: 'int' } } }, /the rule for seed has type "int"; use one of number, integer, string, boolean/],
    [{ required: 'seed' }, /"required" must be a list of field paths/],
  ] as const) {
    it(`add refuses before writing anything, naming the field: ${JSON.stringify(schema)}`, async () => {
      const dir = z.dir
      await writeFile(join(dir, '.zoo', 'schema.json'), JSON.stringify(schema))
      await git(dir, 'commit', '-q', '-am', 'schema')
      const head = await git(dir, 'rev-parse', 'HEAD')
      const r = await zoo(dir, ['add', join(dir, '.git', 'w.safetensors'), '--name', 'net/a', '--dataset', 'cifar10@1'])
      noBug(r)
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, said)
      assert.match(r.stderr, /\.zoo\/schema\.json: .*git checkout -- \.zoo\/schema\.json/)
      assert.equal(await git(dir, 'rev-parse', 'HEAD'), head, 'nothing committed')
      await assert.rejects(readdir(join(dir, 'models')), 'no manifest written')
    })
  }

  it('with the schema fixed, the same add succeeds and the pattern applies', async () => {
    await writeFile(join(z.dir, '.zoo', 'schema.json'), JSON.stringify({ required: ['dataset'], properties: { dataset: { pattern: '^[a-z0-9-]+@' } } }))
    await git(z.dir, 'commit', '-q', '-am', 'schema fixed')
    const refused = await zoo(z.dir, ['add', join(z.dir, '.git', 'w.safetensors'), '--name', 'net/a', '--dataset', 'CIFAR'])
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /dataset must match \^\[a-z0-9-\]\+@/)
    const r = await zoo(z.dir, ['add', join(z.dir, '.git', 'w.safetensors'), '--name', 'net/a', '--dataset', 'cifar10@1'])
    assert.equal(r.code, 0, r.stderr)
  })
})

describe('names the user typed, objects the store lacks, and where help is', () => {
  let z: { dir: string; cleanup: () => Promise<void> }
  let empty: string
  before(async () => {
    z = await zooRepo()
    await add(z.dir, 'net/a', 1)
    empty = await mkdtemp(join(tmpdir(), 'zoo-empty-store-'))
  })
  after(async () => { await z.cleanup(); await rm(empty, { recursive: true, force: true }) })

  it('a model name the zoo does not have is a usage error (exit 2) for every command that takes one', async () => {
    for (const args of [['get', 'net/b'], ['show', 'net/b'], ['verify', 'net/b'], ['lineage', 'net/b'], ['get', 'net/a@v7'], ['diff', 'net/a', 'net/b'],
      ['retire', 'net/a@v9', '--reason', 'typo'], ['get', 'bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi']]) {
      const r = await zoo(z.dir, args, { GIT_ZOO_DEBUG: '1' })
      noBug(r)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /is not in this zoo|no model in this zoo has seal|is not a committed model version/, args.join(' '))
      assert.match(r.stderr, /^E_UNKNOWN_MODEL /m, args.join(' '))
    }
  })

  it('an object missing from the store and the remote is a failed check (exit 1, E_NOT_FOUND)', async () => {
    // an empty local store and an empty zoo remote: get fetches what it lacks, and the remote lacks it too
    await mkdir(join(empty, 'remote'))
    const added = await zoo(z.dir, ['remote', 'add', 'bare', join(empty, 'remote')])
    assert.equal(added.code, 0, added.stderr)
    try {
      const r = await zoo(z.dir, ['get', 'net/a', '--out', join(empty, 'out')], { GIT_ZOO_STORE: join(empty, 'store'), GIT_ZOO_DEBUG: '1' })
      noBug(r)
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /git zoo: object \S+ is not in .*remote/)
      assert.match(r.stderr, /^E_NOT_FOUND /m)
    } finally { await git(z.dir, 'checkout', '--', '.zoo/config.json') }
  })

  it('a usage error points to the help of the command that was run', async () => {
    for (const [args, cmd] of [[['get'], 'get'], [['find'], 'find'], [['gc', 'extra'], 'gc'], [['remote', 'frobnicate'], 'remote'], [['log', 'a', 'b'], 'log']] as const) {
      const r = await zoo(z.dir, [...args])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`run \`git zoo ${cmd} --help\` for usage`), args.join(' '))
      assert.doesNotMatch(r.stderr, /`git zoo --help`/, args.join(' '))
    }
    const unknown = await zoo(z.dir, ['frobnicate'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /'frobnicate' is not a git zoo command; see `git zoo help`/)
    const proto = await zoo(z.dir, ['constructor'])
    noBug(proto)
    assert.equal(proto.code, 2, 'a name from Object.prototype is not a command')
  })
})

describe('verify --json with an unparsable manifest', () => {
  it('reports it as a problem with object null, keeps checking the other models, exit 1', async () => {
    const { dir, cleanup } = await zooRepo()
    try {
      await add(dir, 'net/a', 1)
      await add(dir, 'net/b', 2)
      await add(dir, 'net/c', 3)
      await writeFile(join(dir, 'models/net/a/v1/manifest.json'), '{ "zoo_manifest": 1,\n')
      // net/b: edited after sealing, which only a check of net/b itself can find
      const bPath = join(dir, 'models/net/b/v1/manifest.json')
      const b = JSON.parse(await readFile(bPath, 'utf8'))
      b.message = 'edited after sealing'
      await writeFile(bPath, JSON.stringify(b, null, 2) + '\n')
      const r = await zoo(dir, ['verify', '--json'])
      noBug(r)
      assert.equal(r.code, 1, r.stderr)
      const out = JSON.parse(r.stdout)
      assert.equal(out.ok, false)
      assert.equal(out.problems.length, 2, r.stdout)
      const [pa, pb] = out.problems
      assert.equal(pa.model, 'net/a@v1')
      assert.equal(pa.path, 'models/net/a/v1/manifest.json')
      assert.equal(pa.object, null)
      assert.match(pa.problem, /unreadable manifest: .*not valid JSON/)
      assert.equal(pb.model, 'net/b@v1')
      assert.match(pb.problem, /seal mismatch/)
      const named = await zoo(dir, ['verify', 'net/a', 'net/c', '--json'])
      assert.equal(named.code, 1, named.stderr)
      assert.deepEqual(JSON.parse(named.stdout).problems.map((p: { model: string }) => p.model), ['net/a@v1'])
      const text = await zoo(dir, ['verify'])
      assert.equal(text.code, 1)
      assert.equal(text.stdout, '')
      assert.match(text.stderr, /net\/a@v1 models\/net\/a\/v1\/manifest\.json: unreadable manifest/)
      assert.match(text.stderr, /git zoo verify: 2 problems/)
    } finally { await cleanup() }
  })
})

describe('eval and agree read their data flags alike', () => {
  it('a --batch-size below 1 and a missing --data are usage errors (exit 2) for both, before anything is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-usererr-data-'))
    try {
      for (const cmd of [['eval', 'm'], ['agree', 'm', 'n']]) {
        const small = await zoo(dir, [...cmd, '--data', 'd.x.npy', '--batch-size', '0'])
        noBug(small)
        assert.equal(small.code, 2, `${cmd[0]}: ${small.stderr}`)
        assert.match(small.stderr, /--batch-size must be at least 1/)
        const none = await zoo(dir, cmd)
        assert.equal(none.code, 2, `${cmd[0]}: ${none.stderr}`)
        assert.match(none.stderr, /--data <file> is required: <stem>\.x\.npy \(with <stem>\.y\.npy\) or an \.npz holding x and y/)
      }
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})
