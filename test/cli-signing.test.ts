/**
 * Signed by default (spec/seal.md, "Setting up signing"), with real ssh-keygen keys, real git
 * signing and the real binary; HOME is a temp folder per user, so ~/.ssh is theirs:
 *   - `init --sign` with no key refuses and names `--new-key`; with it, a key is made, git signs,
 *     and .zoo/allowed_signers is committed with init's set-up in one commit signed by that key;
 *   - an existing ~/.ssh/id_ed25519.pub is used as it is;
 *   - a second user's key is not added by themselves: init prints the line, the audit calls their
 *     promotions "unknown key" until an allowed signer commits it, then "good";
 *   - an unsigned promotion warns naming `git zoo init --sign`; `log` says so too;
 *   - on a terminal (a pty from `script`), plain `init` asks, and "n" is remembered.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, mkdir, appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, tempDir, zoo, git, gitRun, run, sshKey, safetensorsBytes, BIN, type TestRepo } from './helpers-git.js'

let home: { dir: string; cleanup: () => Promise<void> }
before(async () => { home = await tempDir('zoo-homes-') })
after(async () => { await home.cleanup() })

/** A fresh HOME for one user. */
async function userHome(name: string): Promise<string> {
  const h = join(home.dir, name)
  await mkdir(h, { recursive: true })
  return h
}

async function weights(dir: string, fill: number): Promise<string> {
  const f = join(dir, `w${fill}.safetensors`)
  await writeFile(f, safetensorsBytes(16, fill))
  return f
}

const headOf = async (dir: string): Promise<string> => (await git(dir, 'rev-parse', 'HEAD')).trim()
const config = async (dir: string, key: string): Promise<string> => (await gitRun(dir, ['config', '--get', key])).stdout.trim()

interface Verify { ok: boolean; problems: Array<{ model: string; object: string | null; problem: string }> }
async function verifySignatures(dir: string, env: NodeJS.ProcessEnv): Promise<Verify> {
  const r = await zoo(dir, ['verify', '--signatures', '--json'], env)
  const v = JSON.parse(r.stdout) as Verify
  assert.equal(r.code, v.ok ? 0 : 1, r.stderr)
  return v
}

describe('git zoo init --sign', () => {
  let alice: TestRepo
  let aliceHome: string
  before(async () => {
    alice = await initRepo({ email: 'alice@example.invalid', name: 'Alice' })
    aliceHome = await userHome('alice')
  })
  after(async () => { await alice.cleanup() })

  it('without a key: refused (exit 2, E_NO_SIGNING_KEY), naming --new-key; nothing is configured', async () => {
    const r = await zoo(alice.dir, ['init', '--sign'], { HOME: aliceHome, GIT_ZOO_DEBUG: '1' })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /no SSH key to sign with: none in .*\.ssh .*`git zoo init --sign --new-key`/)
    assert.match(r.stderr, /^E_NO_SIGNING_KEY /m)
    assert.equal(await config(alice.dir, 'commit.gpgsign'), 'false')
    assert.equal((await gitRun(alice.dir, ['cat-file', '-e', 'HEAD:.zoo/allowed_signers'])).code, 128)
  })

  it('--new-key makes a key and commits .zoo/allowed_signers with the set-up, signed by it', async () => {
    const before = await headOf(alice.dir)
    const r = await zoo(alice.dir, ['init', '--sign', '--new-key'], { HOME: aliceHome })
    assert.equal(r.code, 0, r.stderr)
    const pub = join(aliceHome, '.ssh', 'id_ed25519.pub')
    const key = (await readFile(pub, 'utf8')).trim().split(' ').slice(0, 2).join(' ')
    assert.match(r.stderr, new RegExp(`made a new SSH key ${join(aliceHome, '.ssh', 'id_ed25519')} \\(ed25519, no passphrase`))
    const head = await headOf(alice.dir)
    assert.notEqual(head, before)
    assert.match(r.stderr, new RegExp(`^git zoo: .*promotions are signed with ${pub}, listed in .zoo/allowed_signers in ${head.slice(0, 12)}$`, 'm'))
    assert.equal(await config(alice.dir, 'gpg.format'), 'ssh')
    assert.equal(await config(alice.dir, 'user.signingkey'), pub)
    assert.equal(await config(alice.dir, 'commit.gpgsign'), 'true')
    // one commit: the list with this key, and init's .zoo/ files
    assert.equal(await git(alice.dir, 'show', 'HEAD:.zoo/allowed_signers'), `alice@example.invalid namespaces="git" ${key}\n`)
    const files = (await git(alice.dir, 'show', '--name-only', '--format=', 'HEAD')).trim().split('\n').sort()
    assert.deepEqual(files, ['.gitignore', '.zoo/README.md', '.zoo/allowed_signers', '.zoo/config.json', '.zoo/schema.json'])
    assert.equal((await git(alice.dir, 'log', '-1', '--format=%G?')).trim(), 'G', 'signed with that key, judged by the anchor init wrote')
    assert.equal((await git(alice.dir, 'status', '--porcelain')).trim(), '')
    // again: nothing new
    const again = await zoo(alice.dir, ['init', '--sign'], { HOME: aliceHome })
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /\(listed in .zoo\/allowed_signers\)$/m)
    assert.equal(await headOf(alice.dir), head)
  })

  it('a promotion is then signed (no warning), and verify --signatures and log judge it good', async () => {
    const add = await zoo(alice.dir, ['add', await weights(alice.dir, 1), '--name', 'net/a', '--json'], { HOME: aliceHome })
    assert.equal(add.code, 0, add.stderr)
    assert.equal(JSON.parse(add.stdout).signed, true)
    assert.doesNotMatch(add.stderr, /not signed/)
    const v = await verifySignatures(alice.dir, { HOME: aliceHome })
    assert.deepEqual(v.problems, [])
    const log = await zoo(alice.dir, ['log'], { HOME: aliceHome })
    assert.match(log.stdout, /promoted net\/a@v1\n {4}by Alice <alice@example.invalid>; signed, good \(alice@example.invalid\)/)
    assert.doesNotMatch(log.stderr, /unsigned/)
  })

  it('a second user: init prints the line to add; the audit says "unknown key" until an allowed signer commits it', async () => {
    const bobHome = await userHome('bob')
    const clone = await tempDir('zoo-bob-')
    try {
      const bob = join(clone.dir, 'zoo')
      await git(clone.dir, 'clone', '-q', alice.dir, bob)
      await git(bob, 'config', 'user.name', 'Bob')
      await git(bob, 'config', 'user.email', 'bob@example.invalid')
      const head = await headOf(bob)
      // one machine's store for both (a plain git clone has no objects; verify checks them too)
      const env = { HOME: bobHome, GIT_ZOO_STORE: join(alice.dir, '.git', 'zoo') }
      const r = await zoo(bob, ['init', '--sign', '--new-key'], env)
      assert.equal(r.code, 0, r.stderr)
      const key = (await readFile(join(bobHome, '.ssh', 'id_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ')
      const line = `bob@example.invalid namespaces="git" ${key}`
      assert.match(r.stderr, /trusting the 1 signer\(s\) in .zoo\/allowed_signers as committed now \(trust on first use/)
      assert.ok(r.stderr.includes(`your key is not in .zoo/allowed_signers; until an allowed signer adds this line to it in a signed commit, \`git zoo verify --signatures\` calls your promotions "unknown key":\n  ${line}\n`), r.stderr)
      assert.equal(await headOf(bob), head, 'no commit: a key cannot authorise itself')
      assert.equal(await config(bob, 'commit.gpgsign'), 'true')

      // signed, but by a key the zoo does not list
      const add = await zoo(bob, ['add', await weights(clone.dir, 2), '--name', 'net/b'], env)
      assert.equal(add.code, 0, add.stderr)
      assert.doesNotMatch(add.stderr, /not signed/)
      const bad = await verifySignatures(bob, env)
      assert.equal(bad.problems.length, 1, JSON.stringify(bad.problems))
      assert.match(bad.problems[0]!.problem, /unknown key/)
      await git(bob, 'reset', '-q', '--hard', 'HEAD~1')

      // alice lists bob in a commit signed by her; bob pulls and promotes
      await appendFile(join(alice.dir, '.zoo/allowed_signers'), `${line}\n`)
      await git(alice.dir, 'commit', '-q', '-m', 'Allow Bob to sign promotions', '.zoo/allowed_signers')
      assert.equal((await git(alice.dir, 'log', '-1', '--format=%G?')).trim(), 'G')
      await git(bob, 'pull', '-q', '--ff-only')
      const add2 = await zoo(bob, ['add', await weights(clone.dir, 3), '--name', 'net/b'], env)
      assert.equal(add2.code, 0, add2.stderr)
      const good = await verifySignatures(bob, env)
      assert.deepEqual(good.problems, [])
      const log = await zoo(bob, ['log', 'net/b'], env)
      assert.match(log.stdout, /by Bob <bob@example.invalid>; signed, good \(bob@example.invalid\)/)
    } finally { await clone.cleanup() }
  })
})

describe('keys and warnings', () => {
  it('an existing ~/.ssh/id_ed25519.pub is used as it is', async () => {
    const h = await userHome('carol')
    await mkdir(join(h, '.ssh'))
    const k = await sshKey(join(h, '.ssh'), 'id_ed25519')
    const repo = await initRepo({ email: 'carol@example.invalid' })
    try {
      const r = await zoo(repo.dir, ['init', '--sign'], { HOME: h })
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /made a new SSH key/)
      assert.equal(await config(repo.dir, 'user.signingkey'), k.pub)
      assert.equal((await readFile(k.pub, 'utf8')).trim(), k.publicKey, 'the key is not replaced')
      assert.equal(await git(repo.dir, 'show', 'HEAD:.zoo/allowed_signers'), `carol@example.invalid namespaces="git" ${k.publicKey.split(' ').slice(0, 2).join(' ')}\n`)
    } finally { await repo.cleanup() }
  })

  it('an unsigned promotion warns naming `git zoo init --sign`, and log says they are unsigned', async () => {
    const repo = await initRepo()
    try {
      assert.equal((await zoo(repo.dir, ['init', '-q'])).code, 0)
      await git(repo.dir, 'commit', '-q', '-m', 'zoo')
      const add = await zoo(repo.dir, ['add', await weights(repo.dir, 4), '--name', 'net/u', '-q'])
      assert.equal(add.code, 0, add.stderr)
      const head = (await git(repo.dir, 'rev-parse', 'HEAD')).trim()
      assert.equal(add.stderr, `git zoo: warning: promotion ${head.slice(0, 12)} is not signed; \`git zoo init --sign\` sets up signed promotions\n`, 'not silenced by -q')
      // with --json the document says it, and stderr stays quiet
      const json = await zoo(repo.dir, ['add', await weights(repo.dir, 5), '--name', 'net/u', '--json'])
      assert.equal(json.code, 0, json.stderr)
      assert.equal(JSON.parse(json.stdout).signed, false)
      assert.equal(json.stderr, '')
      const log = await zoo(repo.dir, ['log'])
      assert.match(log.stderr, /^git zoo: all are unsigned; `git zoo init --sign` sets up signed promotions$/m)
    } finally { await repo.cleanup() }
  })
})

const hasScript = (await run('sh', ['-c', 'command -v script'], { cwd: '/' })).code === 0

describe('on a terminal, init offers signing', { skip: hasScript ? false : '`script` (util-linux) is not installed' }, () => {
  /** `git zoo init` on a pseudo-terminal (script), answering `answer`. */
  const onTty = (dir: string, h: string, answer: string) =>
    run('script', ['-qec', `'${process.execPath}' '${BIN}' init`, '/dev/null'], { cwd: dir, env: { HOME: h, GIT_ZOO_DEBUG: '' }, input: answer })

  it('"n" leaves git as it is and is remembered; "y" (or Enter) signs with the key found', async () => {
    const h = await userHome('dave')
    await mkdir(join(h, '.ssh'))
    const k = await sshKey(join(h, '.ssh'), 'id_ed25519')
    const no = await initRepo({ email: 'dave@example.invalid' })
    const yes = await initRepo({ email: 'dave@example.invalid' })
    try {
      const r = await onTty(no.dir, h, 'n\n')
      assert.equal(r.code, 0, r.stdout)
      assert.ok(r.stdout.includes(`sign promotions with ${k.pub}? [Y/n]`), r.stdout)
      assert.equal(await config(no.dir, 'zoo.sign'), 'false')
      assert.equal(await config(no.dir, 'commit.gpgsign'), 'false')
      const again = await onTty(no.dir, h, '')
      assert.doesNotMatch(again.stdout, /\[Y\/n\]/, 'not asked again')

      const y = await onTty(yes.dir, h, 'y\n')
      assert.equal(y.code, 0, y.stdout)
      assert.equal(await config(yes.dir, 'user.signingkey'), k.pub)
      assert.equal(await config(yes.dir, 'commit.gpgsign'), 'true')
      assert.equal((await git(yes.dir, 'log', '-1', '--format=%G?')).trim(), 'G')
      // without a terminal nobody is asked
      const plain = await initRepo({ email: 'dave@example.invalid' })
      try {
        const p = await zoo(plain.dir, ['init'], { HOME: h })
        assert.equal(p.code, 0)
        assert.doesNotMatch(p.stderr, /\[Y\/n\]/)
        assert.equal(await config(plain.dir, 'commit.gpgsign'), 'false')
      } finally { await plain.cleanup() }
    } finally { await no.cleanup(); await yes.cleanup() }
  })
})
