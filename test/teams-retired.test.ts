/**
 * Retired versions through the real CLI: where a version is chosen for the user (`get <model>`,
 * `show <model>`, `--parent <model>`, `find`, `ls`), a retired one is skipped; `show` says who
 * retired it, when and why; a model whose every version is retired is refused with the `@vN`
 * that forces one. The catalog cache follows retirements in both of its freshness modes.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, tempRepo, zoo, type Run } from './cli.js'

let work: string
before(async () => { work = await mkdtemp(join(tmpdir(), 'zoo-retired-')) })
after(async () => { await rm(work, { recursive: true, force: true }) })

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

/** A zoo with m@v1 (acc 0.5), m@v2 (acc 0.9) and other@v1 (acc 0.7); returns the weights of each. */
async function zooWithVersions(env: NodeJS.ProcessEnv = {}): Promise<{ dir: string; files: Record<string, Buffer>; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-ret-')
  await ok(zoo(r.dir, ['init'], env), 'init')
  await git(r.dir, 'add', '-A')
  await git(r.dir, 'commit', '-q', '-m', 'zoo')
  const files: Record<string, Buffer> = {}
  for (const [ref, acc] of [['m@v1', 0.5], ['m@v2', 0.9], ['other@v1', 0.7]] as const) {
    const d = await mkdtemp(join(work, 'w-'))
    files[ref] = randomBytes(4096)
    await writeFile(join(d, 'w.bin'), files[ref])
    await writeFile(join(d, 'metrics.json'), JSON.stringify({ acc }))
    await ok(zoo(r.dir, ['add', join(d, 'w.bin'), '--name', ref.split('@')[0]!, '--metrics', join(d, 'metrics.json'), '--dataset', 'cifar10'], env), `add ${ref}`)
  }
  return { ...r, files }
}

const listed = (r: Run): string[] => (JSON.parse(r.stdout) as { models: Array<{ name: string; version: number; retired?: boolean }> })
  .models.map((m) => `${m.name}@v${m.version}${m.retired ? ' retired' : ''}`)

describe('retired versions', { concurrency: 2 }, () => {
  it('get, show, find, ls and --parent skip a retired version; show says who, when and why', async () => {
    const z = await zooWithVersions()
    try {
      // before: the latest version is v2
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'acc>0.6', '--json']), 'find')), ['m@v2', 'other@v1'])
      const ret = JSON.parse((await ok(zoo(z.dir, ['retire', 'm@v2', '--reason', 'trained on the leaked test split', '--json']), 'retire')).stdout)

      const out = join(work, 'get-m')
      const got = JSON.parse((await ok(zoo(z.dir, ['get', 'm', '--out', out, '--json']), 'get m')).stdout)
      assert.equal(got.version, 1, 'get <model> writes the latest version in service')
      assert.deepEqual(await readFile(join(out, 'w.bin')), z.files['m@v1'])

      // find matches over the versions in service: v1 no longer hidden by the retired v2
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'acc>0.6', '--json']), 'find')), ['other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'dataset=cifar10', '--json']), 'find')), ['m@v1', 'other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'acc>0.6', '--include-retired', '--json']), 'find')), ['m@v2 retired', 'other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'dataset=cifar10', '--all-versions', '--json']), 'find')), ['m@v1', 'other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'dataset=cifar10', '--all-versions', '--include-retired', '--json']), 'find')), ['m@v1', 'm@v2 retired', 'other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['ls', '--json']), 'ls')), ['m@v1', 'other@v1'])
      const table = (await ok(zoo(z.dir, ['ls', '--include-retired']), 'ls')).stdout
      assert.match(table, /m@v2/)
      assert.match(table, /retired \(see `git zoo log`\): m@v2\n/)

      // show: the bare name is v1; the retired version says so, with reason, who and when
      const shown = JSON.parse((await ok(zoo(z.dir, ['show', 'm', '--json']), 'show m')).stdout)
      assert.equal(shown.version, 1)
      assert.equal(shown.retired, null)
      const card = (await ok(zoo(z.dir, ['show', 'm@v2']), 'show m@v2')).stdout
      assert.match(card, new RegExp(`RETIRED\\s+${ret.retired.replace(/[.]/g, '\\.')} by Test Researcher <researcher@example\\.invalid>: trained on the leaked test split`))
      const json = JSON.parse((await ok(zoo(z.dir, ['show', 'm@v2', '--json']), 'show m@v2 --json')).stdout)
      assert.deepEqual(json.retired, { reason: 'trained on the leaked test split', retired_by: 'Test Researcher <researcher@example.invalid>', retired: ret.retired })

      // an explicit @vN still resolves, with a warning
      const forced = await ok(zoo(z.dir, ['get', 'm@v2', '--out', join(work, 'get-m2')]), 'get m@v2')
      assert.match(forced.stderr, /warning: m@v2 is retired \(.* trained on the leaked test split\)/)
      assert.deepEqual(await readFile(join(work, 'get-m2', 'w.bin')), z.files['m@v2'])

      // a parent named without a version is the version in service
      const d = await mkdtemp(join(work, 'w-'))
      await writeFile(join(d, 'child.bin'), randomBytes(100))
      await ok(zoo(z.dir, ['add', join(d, 'child.bin'), '--name', 'child', '--parent', 'm']), 'add child')
      const child = JSON.parse((await ok(zoo(z.dir, ['show', 'child', '--json']), 'show child')).stdout)
      assert.deepEqual(child.parents.map((p: { name: string; version: number }) => `${p.name}@v${p.version}`), ['m@v1'])

      // every version retired: get refuses naming the @vN that forces one; ls still lists the model
      await ok(zoo(z.dir, ['retire', 'm@v1', '--reason', 'superseded']), 'retire v1')
      const refused = await zoo(z.dir, ['get', 'm', '--out', join(work, 'get-none')])
      assert.equal(refused.code, 1)
      assert.equal(refused.stderr, 'git zoo: every version of m is retired (v1, v2); to use one anyway, name it: m@v2 (`git zoo show m@v2` says why it was retired)\n')
      assert.deepEqual(listed(await ok(zoo(z.dir, ['ls', '--json']), 'ls')), ['child@v1', 'm@v2 retired', 'other@v1'])
      assert.deepEqual(listed(await ok(zoo(z.dir, ['find', 'dataset=cifar10', '--json']), 'find')), ['other@v1'])
    } finally { await z.cleanup() }
  })

  for (const mode of ['git', 'always']) {
    it(`the catalog cache follows retirements and checkouts (GIT_ZOO_CATALOG_CHECK=${mode})`, async () => {
      const env = { GIT_ZOO_CATALOG_CHECK: mode }
      const z = await zooWithVersions(env)
      try {
        const latestOfM = async (): Promise<string[]> => listed(await ok(zoo(z.dir, ['find', 'name=m', '--json'], env), 'find')).filter((x) => x.startsWith('m@'))
        assert.deepEqual(await latestOfM(), ['m@v2'])  // the cache is built here
        await ok(zoo(z.dir, ['retire', 'm@v2', '--reason', 'bad'], env), 'retire')
        assert.deepEqual(await latestOfM(), ['m@v1'])
        await git(z.dir, 'checkout', '-q', 'HEAD~1')  // before the retirement
        assert.deepEqual(await latestOfM(), ['m@v2'])
        await git(z.dir, 'checkout', '-q', 'main')
        assert.deepEqual(await latestOfM(), ['m@v1'])
      } finally { await z.cleanup() }
    })
  }
})
