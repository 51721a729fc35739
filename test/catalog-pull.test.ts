/**
 * The catalog of a clone, and after a pull (spec/catalog.md, "Freshness"): a plain `git clone`
 * answers its first `find` like the manifests say; a `git pull` that adds, changes and removes
 * manifests (and retires a version) is taken in by re-reading only the manifests whose blobs changed;
 * stage tags moved, fetched or packed show in `ls` without a stale answer; a cold build large enough
 * for worker threads (their encoded parts merged) gives what the manifests say. Real git, the real
 * CLI, slim synthetic zoos (bench/gen-zoo.ts) in git check mode, the mode of zoos over 1,000 models.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, mkdir, rm, mkdtemp, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { zoo, git } from './cli.js'
import { generateZoo } from '../bench/gen-zoo.js'

const GIT_MODE = { GIT_ZOO_CATALOG_CHECK: 'git' }

interface Listed { name: string; version: number; dataset?: string; retired?: boolean; stages?: string[] }

async function ls(dir: string, args: string[] = []): Promise<Listed[]> {
  const r = await zoo(dir, ['ls', '--all-versions', '--include-retired', '--json', ...args], GIT_MODE)
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { models: Listed[]; total: number }
  assert.equal(out.total, out.models.length)
  return out.models
}

/** What the manifests in `dir`'s work tree say: name@vN dataset [retired], sorted. */
async function oracle(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (e.isDirectory()) await walk(`${rel}/${e.name}`)
      else if (e.name === 'manifest.json') {
        const m = JSON.parse(await readFile(join(dir, rel, e.name), 'utf8')) as { name: string; version: number; dataset: string }
        const retired = (await readdir(join(dir, rel))).includes('RETIRED.json')
        out.push(`${m.name}@v${m.version} ${m.dataset}${retired ? ' retired' : ''}`)
      }
    }
  }
  await walk('models')
  return out.sort()
}
const shown = (xs: Listed[]): string[] => xs.map((m) => `${m.name}@v${m.version} ${m.dataset}${m.retired ? ' retired' : ''}`).sort()

test('a clone answers its first find from the manifests; a pull that adds, changes, removes and retires is taken in incrementally', async () => {
  const base = await mkdtemp(join(tmpdir(), 'zoo-catalog-pull-'))
  try {
    const origin = join(base, 'origin')
    await generateZoo(origin, { models: 40, epochs: 5, checkEvery: 10, slim: true, commits: true })
    const paths = (await git(origin, 'ls-files', 'models')).trim().split('\n').filter((p) => p.endsWith('/manifest.json'))
    assert.equal(paths.length, 40)
    const clone = join(base, 'clone')
    await git(base, 'clone', '-q', `file://${origin}`, clone)
    // the clone has no catalog cache (it is not in git): the first query builds it
    assert.deepEqual(shown(await ls(clone)), await oracle(origin))
    const cifar = (await zoo(clone, ['find', 'dataset=cifar10', '--json'], GIT_MODE))
    assert.equal(cifar.code, 0, cifar.stderr)
    assert.deepEqual((JSON.parse(cifar.stdout) as { models: Listed[] }).models.map((m) => m.name).sort(),
      (await oracle(origin)).filter((l) => l.endsWith(' cifar10')).map((l) => l.split('@')[0]).sort())

    // upstream: 3 changed, 2 removed, 2 new versions, 1 retired (RETIRED.json beside its manifest)
    const text = async (p: string): Promise<string> => readFile(join(origin, p), 'utf8')
    for (const p of paths.slice(0, 3)) await writeFile(join(origin, p), (await text(p)).replace(/"dataset": "[^"]*"/, '"dataset": "changed-upstream"'))
    for (const p of paths.slice(3, 5)) await rm(join(origin, p))
    for (const p of paths.slice(5, 7)) {
      const v2 = p.replace('/v1/manifest.json', '/v2/manifest.json')
      await mkdir(join(origin, v2, '..'), { recursive: true })
      await writeFile(join(origin, v2), (await text(p)).replace('"version": 1,', '"version": 2,').replace(/"dataset": "[^"]*"/, '"dataset": "added-upstream"'))
    }
    await writeFile(join(origin, paths[7]!, '..', 'RETIRED.json'), '{ "reason": "test" }\n')
    await git(origin, 'add', '-A', 'models')
    await git(origin, 'commit', '-q', '-m', 'upstream changes')

    // a hand edit in the clone that git is not told about: git mode does not see it (spec), so a
    // catalog that still shows the old value after the pull re-read only what the pull changed
    const untouched = paths[20]!
    const before = await readFile(join(clone, untouched), 'utf8')
    await writeFile(join(clone, untouched), before.replace(/"dataset": "[^"]*"/, '"dataset": "hand-edit"'))
    await git(clone, 'pull', '-q', '--ff-only')
    const after = await ls(clone)
    const want = await oracle(origin)
    assert.deepEqual(shown(after), want)
    assert.equal(after.filter((m) => m.dataset === 'changed-upstream').length, 3)
    assert.equal(after.filter((m) => m.dataset === 'added-upstream' && m.version === 2).length, 2)
    assert.equal(after.filter((m) => m.retired).length, 1)
    assert.equal(after.length, 40)
    assert.ok(!after.some((m) => m.dataset === 'hand-edit'), 'a full rebuild would have read the hand edit')
    // --refresh looks at every file: then the hand edit shows
    const refreshed = await zoo(clone, ['find', 'dataset=hand-edit', '--refresh', '--json'], GIT_MODE)
    assert.equal(refreshed.code, 0, refreshed.stderr)
    assert.equal((JSON.parse(refreshed.stdout) as { total: number }).total, 1)
  } finally {
    await rm(base, { recursive: true, force: true })
  }
})

test('stages in ls follow tags moved, fetched and packed (read from the refs, cached by their state)', async () => {
  const base = await mkdtemp(join(tmpdir(), 'zoo-catalog-stages-'))
  try {
    const origin = join(base, 'origin')
    await generateZoo(origin, { models: 6, epochs: 3, checkEvery: 3, slim: true, commits: true })
    const names = (await ls(origin)).map((m) => m.name)
    const stagesOf = async (dir: string): Promise<Record<string, string[]>> =>
      Object.fromEntries((await ls(dir)).filter((m) => m.stages?.length).map((m) => [m.name, m.stages!]))
    assert.deepEqual(await stagesOf(origin), {})
    const tag = async (args: string[]): Promise<void> => { const r = await zoo(origin, ['tag', ...args]); assert.equal(r.code, 0, r.stderr) }
    await tag([`${names[0]}@v1`, 'prod'])
    assert.deepEqual(await stagesOf(origin), { [names[0]!]: ['prod'] })
    await tag([`${names[1]}@v1`, 'prod'])
    await tag([`${names[1]}@v1`, 'staging'])
    assert.deepEqual(await stagesOf(origin), { [names[0]!]: ['prod'], [names[1]!]: ['prod', 'staging'] })
    // the plain table shows the column too
    const table = await zoo(origin, ['ls'], GIT_MODE)
    assert.match(table.stdout, new RegExp(`${names[1]!.replace(/[.]/g, '\\.')}@v1 .*prod,staging`))
    // packed refs hold the same tags: the same answer
    await git(origin, 'pack-refs', '--all')
    assert.deepEqual(await stagesOf(origin), { [names[0]!]: ['prod'], [names[1]!]: ['prod', 'staging'] })
    await tag(['--delete', names[1]!, 'prod'])
    assert.deepEqual(await stagesOf(origin), { [names[0]!]: ['prod'], [names[1]!]: ['staging'] })
    // a clone fetches the tags: its first listing shows them
    const clone = join(base, 'clone')
    await git(base, 'clone', '-q', `file://${origin}`, clone)
    assert.deepEqual(await stagesOf(clone), { [names[0]!]: ['prod'], [names[1]!]: ['staging'] })
    await tag([`${names[2]}@v1`, 'prod'])
    await git(clone, 'fetch', '-q', '--tags')
    assert.deepEqual(await stagesOf(clone), { [names[0]!]: ['prod'], [names[1]!]: ['staging'], [names[2]!]: ['prod'] })
  } finally {
    await rm(base, { recursive: true, force: true })
  }
})

test('a cold build of 1,600 manifests in worker threads, merged, answers as the manifests say', async () => {
  const base = await mkdtemp(join(tmpdir(), 'zoo-catalog-workers-'))
  try {
    const dir = join(base, 'zoo')
    await generateZoo(dir, { models: 1600, epochs: 3, checkEvery: 400, slim: true })
    const paths = (await git(dir, 'ls-files', 'models')).trim().split('\n').filter((p) => p.endsWith('/manifest.json'))
    // a retired version in the middle of the rows (latest/current are recomputed over the merged parts)
    await writeFile(join(dir, paths[800]!, '..', 'RETIRED.json'), '{ "reason": "test" }\n')
    await git(dir, 'add', 'models')
    await git(dir, 'commit', '-q', '-m', 'retire one')
    type Row = { name: string; version: number; dataset: string; params: Record<string, unknown>; metrics: Record<string, number>; retired?: boolean }
    const want = await Promise.all(paths.map(async (p, i) => {
      const m = JSON.parse(await readFile(join(dir, p), 'utf8')) as Row
      return { name: m.name, version: m.version, dataset: m.dataset, params: m.params, metrics: m.metrics, ...(i === 800 ? { retired: true } : {}) }
    }))
    const r = await zoo(dir, ['ls', '--all-versions', '--include-retired', '--json'], GIT_MODE)
    assert.equal(r.code, 0, r.stderr)
    const got = (JSON.parse(r.stdout) as { models: Row[] }).models.map((m) => ({ name: m.name, version: m.version, dataset: m.dataset, params: m.params, metrics: m.metrics, ...(m.retired ? { retired: true } : {}) }))
    const key = (m: Row): string => `${m.name}@v${m.version}`
    assert.deepEqual(got.sort((a, b) => (key(a) < key(b) ? -1 : 1)), want.sort((a, b) => (key(a) < key(b) ? -1 : 1)))
    // params that are neither text nor numbers keep their type (true, not "true")
    assert.equal(got[0]!.params.cuda, true)
    // the retired version is skipped by find, and ls lists the model anyway
    const name = want.find((m) => m.retired)!.name
    const found = await zoo(dir, ['find', `name=${name}`, '--json'], GIT_MODE)
    assert.equal((JSON.parse(found.stdout) as { total: number }).total, 0)
    const listed = await zoo(dir, ['ls', '--json'], GIT_MODE)
    assert.ok((JSON.parse(listed.stdout) as { models: Row[] }).models.some((m) => m.name === name && m.retired))
  } finally {
    await rm(base, { recursive: true, force: true })
  }
})
