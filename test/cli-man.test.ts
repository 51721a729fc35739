/**
 * Manual pages: made from the built-in help (src/cli/manpages.ts), so they never drift from it.
 *   - the pages in man/man1/ (written by `npm run build`) are exactly what the generator makes, and
 *     package.json lists exactly them under `man` (what npm installs with -g / link), and packs them;
 *   - `man -l` renders every page without a warning, and the rendering holds each command's usage
 *     (skipped when `man` is not installed);
 *   - through real git: `git zoo --help` and `git help zoo` open git-zoo(1) found by MANPATH, while
 *     `git zoo <command> --help` prints the built-in help.
 * The npm part also checks that the project's own config files make npm print no warning.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { manPages, MAN_DIR } from '../src/cli/manpages.js'
import { visibleCommands, loadCommand } from '../src/cli/main.js'
import { ROOT, BIN, run, tempDir, initRepo, type TestRepo } from './helpers-git.js'

const hasMan = (await run('sh', ['-c', 'command -v man'], { cwd: ROOT })).code === 0

/** The environment for man and git help: no pager, a fixed width. */
function manEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { MANPAGER: 'cat', PAGER: 'cat', GIT_PAGER: 'cat', MANWIDTH: '100', LC_ALL: 'C.UTF-8', ...extra }
}

/** man's rendering of roff as plain text (bold and underline removed). */
const plain = (s: string): string => s.replace(/.\x08/g, '').replace(/\u2010/g, '-').replace(/[\u2018\u2019]/g, '\'')

describe('manual pages are the built-in help', () => {
  it('man/man1 holds exactly the generated pages, and package.json lists exactly them', async () => {
    const pages = await manPages()
    assert.deepEqual([...pages.keys()].sort(), ['git-zoo.1', ...visibleCommands().map((n) => `git-zoo-${n}.1`)].sort())
    const onDisk = (await readdir(join(ROOT, MAN_DIR))).filter((f) => f.endsWith('.1')).sort()
    assert.deepEqual(onDisk, [...pages.keys()].sort(), 'run `npm run build` to write the pages')
    for (const [name, text] of pages) assert.equal(await readFile(join(ROOT, MAN_DIR, name), 'utf8'), text, `${name} differs from its help: run \`npm run build\``)
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { man: string[]; files: string[]; scripts: Record<string, string> }
    assert.deepEqual(pkg.man, [...pages.keys()].map((n) => `./${MAN_DIR}/${n}`))
    assert.ok(pkg.files.includes('man'), 'the pages are in the package')
    assert.match(pkg.scripts.build!, /scripts\/man-pages\.mjs/, 'npm run build writes them')
    // every page carries its command's usage, description and flags
    for (const n of visibleCommands()) {
      const help = (await loadCommand(n)).help
      const page = pages.get(`git-zoo-${n}.1`)!
      const usage = help.split('\n')[0]!.replace(/^usage: /, '')
      assert.ok(page.includes(usage.replace(/\\/g, '\\e').replace(/-/g, '\\-')), `${n}: usage line in the page`)
    }
  })

  it('npm packs the pages and prints no warning about the project\'s own config', async () => {
    const { dir, cleanup } = await tempDir('zoo-npm-')
    try {
      const env: NodeJS.ProcessEnv = {}
      for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
      // only the project's .npmrc (if any) is read: not this machine's user or global config
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
        import('node:child_process').then(({ execFile }) => execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'],
          { cwd: ROOT, env: { ...env, npm_config_userconfig: join(dir, 'npmrc'), npm_config_globalconfig: join(dir, 'npmrc-global'), npm_config_cache: join(dir, 'cache'), npm_config_update_notifier: 'false' }, maxBuffer: 1 << 26 },
          (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr })))
      })
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /npm warn/i, 'npm warns about the project config')
      const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path)
      assert.ok(files.includes('man/man1/git-zoo.1'), files.filter((f) => f.startsWith('man')).join(', '))
      assert.ok(files.includes('man/man1/git-zoo-add.1'))
    } finally { await cleanup() }
  })
})

describe('man renders them', { skip: hasMan ? false : 'man is not installed' }, () => {
  it('every page renders without a warning, with its command\'s usage in it', async () => {
    const pages = await manPages()
    for (const name of pages.keys()) {
      const r = await run('man', ['--warnings', '-l', join(ROOT, MAN_DIR, name)], { cwd: ROOT, env: manEnv() })
      assert.equal(r.code, 0, `${name}: ${r.stderr}`)
      assert.equal(r.stderr.replace(/^.*cannot adjust line.*\n/gm, ''), '', `${name}: ${r.stderr}`)
      const text = plain(r.stdout)
      if (name === 'git-zoo.1') {
        for (const n of visibleCommands()) assert.ok(text.includes(`git zoo ${n} - see git-zoo-${n}(1)`), `${n} listed`)
        continue
      }
      const cmd = name.replace(/^git-zoo-|\.1$/g, '')
      assert.ok(text.includes(`git zoo ${cmd}`), `${name} shows its usage`)
      assert.match(text, /EXIT STATUS/)
    }
  })
})

describe('through git', { skip: hasMan ? false : 'man is not installed' }, () => {
  let bin: { dir: string; cleanup: () => Promise<void> }
  let repo: TestRepo
  before(async () => {
    bin = await tempDir('zoo-bin-')
    await mkdir(join(bin.dir, 'bin'))
    await symlink(BIN, join(bin.dir, 'bin', 'git-zoo'))
    repo = await initRepo()
  })
  after(async () => { await bin.cleanup(); await repo.cleanup() })
  // no user or system git config (help.format, man.viewer): a global config file that does not exist
  const env = (): NodeJS.ProcessEnv => manEnv({
    PATH: `${join(bin.dir, 'bin')}:${process.env.PATH}`, MANPATH: join(ROOT, 'man'),
    GIT_CONFIG_GLOBAL: join(bin.dir, 'no-gitconfig'), GIT_CONFIG_NOSYSTEM: '1',
  })

  it('git zoo --help and git help zoo open git-zoo(1)', async () => {
    for (const args of [['zoo', '--help'], ['help', 'zoo']]) {
      const r = await run('git', args, { cwd: repo.dir, env: env() })
      assert.equal(r.code, 0, `git ${args.join(' ')}: ${r.stderr}`)
      const text = plain(r.stdout)
      assert.match(text, /^GIT-ZOO\(1\)/m, `git ${args.join(' ')}`)
      assert.match(text, /git-zoo - a model zoo in a git repository/)
      assert.ok(text.includes('git zoo add - see git-zoo-add(1)'))
    }
    // without the pages git says so: the test above is not passing by accident
    const none = await run('git', ['zoo', '--help'], { cwd: repo.dir, env: { ...env(), MANPATH: join(bin.dir, 'nothing') } })
    assert.notEqual(none.code, 0)
    assert.match(none.stderr, /No manual entry for git-zoo/)
  })

  it('git zoo <command> --help prints the built-in help, and man git-zoo-<command> the same text', async () => {
    const r = await run('git', ['zoo', 'get', '--help'], { cwd: repo.dir, env: env() })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, (await loadCommand('get')).help)
    const m = await run('man', ['git-zoo-get'], { cwd: repo.dir, env: env() })
    assert.equal(m.code, 0, m.stderr)
    const text = plain(m.stdout)
    for (const flag of ['--out <dir>', '--file <path>', '--checkpoint <epoch>']) assert.ok(text.includes(flag), flag)
  })
})
