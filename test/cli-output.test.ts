/**
 * The CLI's output conventions through the real binary (spec/cli.md, "Output"): a command that
 * changes something prints one summary line on stderr without a terminal too (CI logs), -q/--quiet
 * silences it, --json prints one document (on failure { "error": { "code", "message" } } with the
 * same exit status), and unknown commands and flags suggest the nearest one, whose help works.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, zoo, git, safetensorsBytes, type TestRepo } from './helpers-git.js'
import { editDistance, nearest } from '../src/cli/args.js'

let r: TestRepo
before(async () => {
  r = await initRepo()
  await writeFile(join(r.dir, 'w.safetensors'), safetensorsBytes(32))
})
after(async () => { await r.cleanup() })

/** Lines of stderr that are not warnings. */
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !/warning:/.test(l))

describe('summary lines', () => {
  it('init, add, get and verify print one summary line without a terminal; -q silences it; --json prints only JSON', async () => {
    const init = await zoo(r.dir, ['init'])
    assert.equal(init.code, 0, init.stderr)
    assert.equal(init.stdout, '')
    assert.deepEqual(lines(init.stderr).length, 1, init.stderr)
    assert.match(init.stderr, /^git zoo: initialized a zoo in .+; staged .zoo\/README.md, .zoo\/config.json, .zoo\/schema.json, .gitignore; pre-commit hook installed, pre-push hook installed$/m)
    const again = await zoo(r.dir, ['init'])
    assert.match(again.stderr, /^git zoo: the zoo in .+ is set up already$/m)
    const quietInit = await zoo(r.dir, ['init', '-q'])
    assert.equal(quietInit.code, 0)
    assert.equal(quietInit.stderr + quietInit.stdout, '')
    await git(r.dir, 'commit', '-q', '-m', 'zoo')

    const add = await zoo(r.dir, ['add', 'w.safetensors', '--name', 'net/a'])
    assert.equal(add.code, 0, add.stderr)
    const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
    assert.equal(lines(add.stderr).length, 1, add.stderr)
    assert.match(lines(add.stderr)[0]!, new RegExp(`^git zoo: promoted net/a@v1 \\(1 file, [\\d.]+ [KM]?i?B new\\) in ${head.slice(0, 12)}$`))
    assert.equal(add.stdout, '')

    const quiet = await zoo(r.dir, ['add', 'w.safetensors', '--name', 'net/b', '--quiet'])
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.deepEqual(lines(quiet.stderr), [], 'no summary with --quiet')

    const json = await zoo(r.dir, ['add', 'w.safetensors', '--name', 'net/c', '--json'])
    assert.equal(json.code, 0, json.stderr)
    const doc = JSON.parse(json.stdout)
    assert.equal(doc.name, 'net/c')
    assert.equal(doc.version, 1)
    assert.deepEqual(lines(json.stderr), [], 'the summary is not printed with --json')

    const verify = await zoo(r.dir, ['verify'])
    assert.equal(verify.code, 0, verify.stderr)
    assert.deepEqual(lines(verify.stderr), ['git zoo verify: no problems'])
    const qv = await zoo(r.dir, ['verify', '-q'])
    assert.equal(qv.code, 0)
    assert.equal(qv.stderr, '')

    const get = await zoo(r.dir, ['get', 'net/a', '-q'])
    assert.equal(get.code, 0, get.stderr)
    assert.equal(get.stderr, '')
    assert.equal(get.stdout, `${join(r.dir, 'net', 'a')}\n`, 'the path written is data on stdout, kept with -q')
  })

  it('a failed check still says so with -q', async () => {
    const m = join(r.dir, 'models/net/b/v1/manifest.json')
    const text = await readFile(m, 'utf8')
    try {
      await writeFile(m, text.replace('"net/b"', '"net/b" ,"message": "edited"'))
      const v = await zoo(r.dir, ['verify', 'net/b', '-q'])
      assert.equal(v.code, 1)
      assert.match(v.stderr, /^git zoo verify: 1 problem/m)
    } finally { await writeFile(m, text) }
  })
})

describe('--json failures', () => {
  it('print { error: { code, message } } on stdout, the message on stderr, and keep the exit status', async () => {
    const cases: Array<[string[], number, string]> = [
      [['get', 'no/such', '--json'], 2, 'E_UNKNOWN_MODEL'],
      [['ls', '--jsno', '--json'], 2, 'E_USAGE'],
      [['frobnicate', '--json'], 2, 'E_USAGE'],
      [['verify', 'net/a', '--from', 'x', '--json'], 2, 'E_USAGE'],
    ]
    for (const [args, code, ecode] of cases) {
      const res = await zoo(r.dir, args)
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`)
      const doc = JSON.parse(res.stdout) as { error: { code: string; message: string } }
      assert.deepEqual(Object.keys(doc), ['error'])
      assert.equal(doc.error.code, ecode, args.join(' '))
      assert.ok(doc.error.message.length > 10)
      assert.ok(res.stderr.includes(`git zoo: ${doc.error.message}`), `stderr has the human message: ${res.stderr}`)
    }
  })

  it('an operational failure (exit 3) too: a .zoo/config.json that is not JSON', async () => {
    const cfg = join(r.dir, '.zoo/config.json')
    const text = await readFile(cfg, 'utf8')
    try {
      await writeFile(cfg, '{ not json')
      const res = await zoo(r.dir, ['add', 'w.safetensors', '--name', 'net/d', '--json'])
      assert.equal(res.code, 3, res.stderr)
      const doc = JSON.parse(res.stdout)
      assert.equal(doc.error.code, 'E_CONFIG')
      assert.match(doc.error.message, /config.json is not valid JSON/)
    } finally { await writeFile(cfg, text) }
  })

  it('without --json stdout stays empty on failure', async () => {
    const res = await zoo(r.dir, ['get', 'no/such'])
    assert.equal(res.code, 2)
    assert.equal(res.stdout, '')
  })
})

describe('suggestions', () => {
  it('an unknown command suggests the nearest, and the help it points to works', async () => {
    const res = await zoo(r.dir, ['fecth'])
    assert.equal(res.code, 2)
    assert.match(res.stderr, /^git zoo: 'fecth' is not a git zoo command; did you mean `git zoo fetch`\? see `git zoo help`$/m)
    const help = await zoo(r.dir, ['help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^ {2}fetch +fetch objects of models from a zoo remote$/m)
    const cmdHelp = await zoo(r.dir, ['help', 'fetch'])
    assert.equal(cmdHelp.code, 0)
    assert.match(cmdHelp.stdout, /^usage: git zoo fetch/)
    const far = await zoo(r.dir, ['zzzzzzzz'])
    assert.equal(far.code, 2)
    assert.doesNotMatch(far.stderr, /did you mean/)
  })

  it('an unknown flag suggests the nearest flag of that command', async () => {
    const res = await zoo(r.dir, ['add', 'w.safetensors', '--name', 'net/e', '--mesage', 'why'])
    assert.equal(res.code, 2)
    assert.match(res.stderr, /unknown flag --mesage for `git zoo add`; did you mean --message\? \(`git zoo add --help` lists the flags\)/)
    const far = await zoo(r.dir, ['ls', '--frobnicate'])
    assert.match(far.stderr, /unknown flag --frobnicate for `git zoo ls`; see `git zoo ls --help`/)
  })

  it('nearest: typos within 1 edit (short words) or 2 (longer), swaps count once, prefixes', () => {
    assert.equal(editDistance('fecth', 'fetch'), 1)
    assert.equal(editDistance('kitten', 'sitting'), 3)
    assert.equal(nearest('fecth', ['push', 'pull', 'fetch']), 'fetch')
    assert.equal(nearest('lineag', ['lineage', 'log']), 'lineage')
    assert.equal(nearest('veri', ['verify', 'eval']), 'verify')
    assert.equal(nearest('xyz', ['ls', 'gc', 'add']), undefined)
    assert.equal(nearest('l', ['ls', 'log']), undefined)
  })
})
