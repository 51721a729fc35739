/**
 * What each process loads, recorded by a module-resolution hook (NODE_OPTIONS=--import) that every
 * node process of the run inherits, git's pre-push hook included: the AWS SDK is loaded only by
 * processes that talk to an s3:// remote, and a pre-push hook with nothing to push loads none of
 * the store, remote or manifest code (spec/architecture.md, "Card packages"). No timing involved.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BIN, ROOT, git, run, tempRepo, zoo, type Run } from './cli.js'
import { startS3rver, type S3Server } from './remote-servers.js'

interface Loaded { argv: string[]; urls: string[] }

/**
 * The CLI runs from the bundle (dist/cli/, scripts/build-cli.mjs), whose files hold several source
 * modules each: a loaded bundle file stands for the sources its meta.json lists, written as the
 * dist/src/ URLs tsc would have given them (`.../dist/src/remote/path.js`), so the checks below read
 * the same either way.
 */
async function sourcesOf(urls: string[]): Promise<string[]> {
  const dir = join(ROOT, 'dist', 'cli')
  let meta: Record<string, string[]> = {}
  try { meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Record<string, string[]> } catch { return urls }
  const base = pathToFileURL(dir).href + '/'
  const asDist = (src: string): string => pathToFileURL(join(ROOT, 'dist', src.replace(/\.ts$/, '.js'))).href
  return urls.flatMap((u) => (u.startsWith(base) && meta[u.slice(base.length)] ? meta[u.slice(base.length)]!.map(asDist) : [u]))
}

/** A folder with the probe: each node process appends its argv and every module it resolves to <pid>.log. */
async function probe(): Promise<{ env: NodeJS.ProcessEnv; dir: string; read: () => Promise<Loaded[]>; clear: () => Promise<void>; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-probe-'))
  const logs = join(dir, 'logs')
  await writeFile(join(dir, 'hooks.mjs'), [
    "import { appendFileSync } from 'node:fs'",
    'export async function resolve(specifier, context, next) {',
    '  const r = await next(specifier, context)',
    '  appendFileSync(`${process.env.ZOO_TEST_MODULE_LOG}/${process.pid}.log`, r.url + "\\n")',
    '  return r',
    '}',
  ].join('\n'))
  await writeFile(join(dir, 'register.mjs'), [
    "import { register } from 'node:module'",
    "import { appendFileSync, mkdirSync } from 'node:fs'",
    'mkdirSync(process.env.ZOO_TEST_MODULE_LOG, { recursive: true })',
    'appendFileSync(`${process.env.ZOO_TEST_MODULE_LOG}/${process.pid}.log`, "argv " + JSON.stringify(process.argv.slice(2)) + "\\n")',
    "register('./hooks.mjs', import.meta.url)",
  ].join('\n'))
  const read = async (): Promise<Loaded[]> => {
    let names: string[] = []
    try { names = await readdir(logs) } catch { return [] }
    const out: Loaded[] = []
    for (const n of names) {
      const lines = (await readFile(join(logs, n), 'utf8')).split('\n').filter(Boolean)
      const argvLine = lines.find((l) => l.startsWith('argv '))
      out.push({ argv: argvLine ? JSON.parse(argvLine.slice(5)) as string[] : [], urls: await sourcesOf(lines.filter((l) => !l.startsWith('argv '))) })
    }
    return out
  }
  return {
    dir,
    env: { NODE_OPTIONS: `--import ${pathToFileURL(join(dir, 'register.mjs')).href}`, ZOO_TEST_MODULE_LOG: logs },
    read,
    clear: () => rm(logs, { recursive: true, force: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

const SDK = /\/node_modules\/@aws-sdk\/client-s3\//
const command = (p: Loaded): string => p.argv.find((a) => !a.startsWith('-')) ?? ''

let s3: S3Server | undefined
before(async () => { s3 = await startS3rver('zoo') })
after(async () => { await s3?.close() })

/** A zoo with a bare git remote and the given zoo remote, one model added; returns what each step loaded. */
async function share(url: string, env: NodeJS.ProcessEnv): Promise<Loaded[]> {
  const p = await probe()
  const work = await mkdtemp(join(tmpdir(), 'zoo-lazy-'))
  const a = await tempRepo('zoo-lazy-a-')
  try {
    const bare = join(work, 'origin.git')
    await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
    await git(a.dir, 'remote', 'add', 'origin', bare)
    ok(await zoo(a.dir, ['init'], env), 'init')
    ok(await zoo(a.dir, ['remote', 'add', 'origin', url], env), 'remote add')
    await git(a.dir, 'commit', '-q', '-m', 'zoo set up')
    await writeFile(join(a.dir, 'model.bin'), randomBytes(64 * 1024))
    ok(await zoo(a.dir, ['add', 'model.bin', '--name', 'demo/net'], env), 'add v1')
    const penv = { ...env, ...p.env }
    // `git zoo push` (its git push runs the pre-push hook, which finds the tips covered)
    ok(await zoo(a.dir, ['push'], penv), 'push')
    // a plain git push: the hook uploads
    await writeFile(join(a.dir, 'model.bin'), randomBytes(64 * 1024))
    ok(await zoo(a.dir, ['add', 'model.bin', '--name', 'demo/net'], env), 'add v2')
    const hooked = ok(await run('git', ['push', '-q', 'origin', 'main'], { cwd: a.dir, env: penv }), 'git push (hook)')
    assert.match(hooked.stderr, /uploaded \d+ object/)
    // a lazy clone, then get: objects come from the zoo remote
    ok(await zoo(work, ['clone', '--lazy', bare, 'b'], penv), 'lazy clone')
    ok(await zoo(join(work, 'b'), ['get', 'demo/net', '--out', 'out'], penv), 'get')
    return await p.read()
  } finally {
    await a.cleanup()
    await rm(work, { recursive: true, force: true })
    await p.cleanup()
  }
}

describe('the AWS SDK is loaded only for s3:// remotes', { concurrency: 2 }, () => {
  it('push, the pre-push hook, clone and get with a path remote never load it', async () => {
    const work = await mkdtemp(join(tmpdir(), 'zoo-lazy-objects-'))
    try {
      const loaded = await share(join(work, 'objects'), {})
      const commands = loaded.map(command)
      for (const c of ['push', 'hook-pre-push', 'clone', 'get']) assert.ok(commands.includes(c), `no ${c} process was recorded: ${commands.join(', ')}`)
      // the hook that uploaded did open the path remote: the probe sees the remote code it loaded
      assert.ok(loaded.some((p) => command(p) === 'hook-pre-push' && p.urls.some((u) => u.endsWith('/dist/src/remote/path.js'))))
      for (const p of loaded) assert.ok(!p.urls.some((u) => SDK.test(u)), `git zoo ${p.argv.join(' ')} loaded the AWS SDK`)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })

  it('the same steps with an s3:// remote do load it (the probe sees it)', async () => {
    const loaded = await share(`s3://${s3!.bucket}/lazy-${Date.now()}`, s3!.env)
    const push = loaded.filter((p) => command(p) === 'push')
    assert.equal(push.length, 1)
    assert.ok(push[0]!.urls.some((u) => SDK.test(u)), 'git zoo push to an s3 remote did not load the SDK')
    assert.ok(loaded.some((p) => command(p) === 'get' && p.urls.some((u) => SDK.test(u))))
  })
})

describe('the pre-push hook with nothing to push', () => {
  it('loads no store, remote or manifest code and no package', async () => {
    const p = await probe()
    const a = await tempRepo('zoo-lazy-hook-')
    try {
      ok(await zoo(a.dir, ['init'], {}), 'init')
      // a deletion only, then no ref updates at all
      const deletion = `(delete) ${'0'.repeat(40)} refs/heads/gone ${'1'.repeat(40)}\n`
      for (const input of [deletion, '']) {
        await p.clear()
        const r = await run(process.execPath, [BIN, 'hook-pre-push', 'origin', '/nowhere'], { cwd: a.dir, env: p.env, input })
        ok(r, 'hook-pre-push')
        assert.equal(r.stdout + r.stderr, '')
        const [only, ...more] = await p.read()
        assert.ok(only && more.length === 0)
        assert.ok(only.urls.some((u) => u.endsWith('/dist/src/cli/commands/hook-pre-push.js')), 'the probe saw the command module')
        const heavy = only.urls.filter((u) => /\/node_modules\/|\/dist\/src\/(?:remote|cas|manifest|git|zoo)\/|\/dist\/src\/repo\.js$/.test(u))
        assert.deepEqual(heavy, [])
      }
    } finally {
      await a.cleanup()
      await p.cleanup()
    }
  })
})

describe('a warm ls or find', () => {
  it('starts no process and loads no store, manifest or git-runner code and no package', async () => {
    const p = await probe()
    const a = await tempRepo('zoo-lazy-find-')
    try {
      ok(await zoo(a.dir, ['init'], {}), 'init')
      await writeFile(join(a.dir, 'm.bin'), randomBytes(4096))
      await writeFile(join(a.dir, 'metrics.json'), '{ "test_acc": 0.75 }\n')
      ok(await zoo(a.dir, ['add', 'm.bin', '--name', 'demo/net', '--metrics', 'metrics.json', '--param', 'lr=0.1'], {}), 'add')
      ok(await zoo(a.dir, ['tag', 'demo/net@v1', 'prod'], {}), 'tag')
      // git check mode: the mode of zoos over 1,000 models, where a fresh cache is the whole check
      const env = { ...p.env, GIT_ZOO_CATALOG_CHECK: 'git' }
      ok(await zoo(a.dir, ['ls'], env), 'first ls (builds the cache, reads the stages once)')
      for (const args of [['ls'], ['find', 'test_acc>0.5', 'lr=0.1', '--sort', '-test_acc']]) {
        await p.clear()
        const r = ok(await zoo(a.dir, args, env), args.join(' '))
        assert.match(r.stdout, /^demo\/net@v1 .*\bprod\b/m, r.stderr)
        const [only, ...more] = await p.read()
        assert.ok(only && more.length === 0)
        assert.ok(only.urls.some((u) => u.endsWith(`/dist/src/cli/commands/${args[0]}.js`)), 'the probe saw the command module')
        const heavy = only.urls.filter((u) => /^node:(child_process|net|stream|worker_threads|crypto)$|\/node_modules\/|\/dist\/src\/(?:remote|cas|git|zoo)\/|\/dist\/src\/(?:repo|manifest\/manifest)\.js$|\/dist\/src\/catalog\/build\.js$/.test(u))
        assert.deepEqual(heavy, [], `git zoo ${args.join(' ')} loaded more than it needs`)
      }
    } finally {
      await a.cleanup()
      await p.cleanup()
    }
  })
})

describe('add, get and verify of a model in the local store', () => {
  it('load no remote code (a clone that is not lazy, every object present) and no CSV parser', async () => {
    const p = await probe()
    const a = await tempRepo('zoo-lazy-data-')
    try {
      ok(await zoo(a.dir, ['init'], {}), 'init')
      await writeFile(join(a.dir, 'm.bin'), randomBytes(4096))
      await writeFile(join(a.dir, 'metrics.json'), '{ "test_acc": 0.75 }\n')
      const steps = [['add', 'm.bin', '--name', 'demo/net', '--metrics', 'metrics.json'], ['get', 'demo/net', '--out', 'out'], ['verify', 'demo/net']]
      for (const args of steps) {
        await p.clear()
        ok(await zoo(a.dir, args, p.env), args.join(' '))
        const mine = (await p.read()).filter((x) => command(x) === args[0])
        assert.equal(mine.length, 1, `one ${args[0]} process`)
        assert.ok(mine[0]!.urls.some((u) => u.endsWith(`/dist/src/cli/commands/${args[0]}.js`)), 'the probe saw the command module')
        // src/remote/lazy.ts (is this clone lazy?) and remote/verify.ts (checking bytes against a CID) are leaves
        const heavy = mine[0]!.urls.filter((u) => /\/node_modules\/csv-parse\/|\/dist\/src\/remote\/(?!lazy\.js$|verify\.js$)|\/dist\/src\/zoo\/reader\.js$/.test(u))
        assert.deepEqual(heavy, [], `git zoo ${args.join(' ')} loaded more than it needs`)
      }
    } finally {
      await a.cleanup()
      await p.cleanup()
    }
  })
})

describe('add, get and verify start from an entry of their own (scripts/build-cli.mjs, hot-<name>.js)', () => {
  it('load a few bundle files, one copy of the dispatcher and of the command', async () => {
    const p = await probe()
    const a = await tempRepo('zoo-lazy-hot-')
    try {
      ok(await zoo(a.dir, ['init'], {}), 'init')
      await writeFile(join(a.dir, 'm.bin'), randomBytes(4096))
      const bundle = pathToFileURL(join(ROOT, 'dist', 'cli')).href + '/'
      for (const args of [['add', 'm.bin', '--name', 'demo/net'], ['get', 'demo/net', '--out', 'out'], ['verify', 'demo/net']]) {
        await p.clear()
        const r = ok(await zoo(a.dir, args, p.env), args.join(' '))
        if (args[0] === 'verify') assert.match(r.stderr, /no problems/)
        // the probe's raw logs: the bundle files themselves, not the sources they hold (add's commit
        // may run the pre-commit hook's node too)
        const logs = await Promise.all((await readdir(join(p.dir, 'logs'))).map((n) => readFile(join(p.dir, 'logs', n), 'utf8')))
        const mine = logs.map((l) => l.split('\n')).filter((lines) => command({ argv: JSON.parse(lines[0]!.slice(5)) as string[], urls: [] }) === args[0])
        assert.equal(mine.length, 1, `one ${args[0]} process`)
        const files = [...new Set(mine[0]!.filter((l) => l.startsWith(bundle)).map((l) => l.slice(bundle.length)))]
        assert.ok(files.includes(`hot-${args[0]}.js`), `git zoo ${args[0]} ran its own entry: ${files.join(', ')}`)
        // main.js or commands/<name>.js would be a second copy of the dispatcher or the command
        assert.deepEqual(files.filter((f) => f === 'main.js' || f.startsWith('commands/')), [])
        assert.ok(files.length <= 4, `git zoo ${args[0]} loaded ${files.length} bundle files: ${files.join(', ')}`)
      }
    } finally {
      await a.cleanup()
      await p.cleanup()
    }
  })
})
