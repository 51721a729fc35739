import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson, summary } from '../output.js'
import { blake3FallbackReason } from '../../cas/blake3.js'
import { Repo } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { initZoo, hookNotes } from '../../zoo/init.js'
import { findSigningKey, setUpSigning, signingConfigured, type SigningSetup } from '../../promote/signing.js'

export const command: Command = {
  help: `usage: git zoo init [--sign [--new-key]] [--json]

Set the current git repository up as a model zoo. Safe to run again at any time.
  - creates .zoo/ (config.json, schema.json, README.md) from git-zoo's .zoo-template, keeping
    files that already exist, and stages it; the template's config.json says
    "chunk_hash": "blake3" (chunks named by BLAKE3; a config without the key, as in every zoo made
    before it, means "sha2-256"; spec/format.md)
  - adds .zoo/cache/ (the derived catalog index) to .gitignore
  - installs the pre-commit and pre-push hooks; a hook you wrote is kept and run first
    (moved to <hook>.zoo-chained; \`git zoo uninstall\` puts it back). If <hook>.zoo-chained
    exists too, no hook is touched and init exits 1 (E_HOOK_CONFLICT) until you merge the two
The object store is created on first use under .git/zoo/ (or where \`git config zoo.store\` says).

Signed promotions (spec/seal.md): with --sign, git in this repository signs every commit with your
SSH key (gpg.format ssh, user.signingkey, commit.gpgsign): the key git already uses, else the first
of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_ed25519_sk.pub, id_ecdsa_sk.pub, id_rsa.pub; with
--new-key, a new ed25519 key is made when none is found (ssh-keygen, no passphrase, in ~/.ssh).
A zoo without .zoo/allowed_signers gets one listing your key, committed (signed) together with
init's set-up (.zoo/ and .gitignore). In a zoo whose list lacks your key, init prints the line an allowed
signer must add (a key cannot authorise itself). When git has no gpg.ssh.allowedSignersFile (the
trust anchor of \`git zoo verify --signatures\`), .git/zoo-allowed-signers is made from the list
as committed now and named there (trust on first use).
On a terminal, plain \`git zoo init\` offers this when git does not sign yet (answer n and it does
not ask again in this repository: git config zoo.sign false). Without a terminal it never asks.

flags:
  --sign      set up signed promotions (see above)
  --new-key   with --sign: make an SSH key when none is found
  -q, --quiet no summary line
  --json      print { root, store, created, hooks, signing? } (signing: { key, principal, line,
              signers: committed | listed | missing, commit?, configured, anchor?, notes })

examples:
  git init my-zoo && cd my-zoo && git zoo init
  git zoo init --sign             # sign with ~/.ssh/id_ed25519.pub
  git zoo init --sign --new-key   # no SSH key yet: make one
`,
  interrupted: 'run `git zoo init` again (it is idempotent)',
  flags: { sign: { type: 'bool' }, 'new-key': { type: 'bool' }, json: { type: 'bool' } },
  async run(args, io) {
    if (bool(args, 'new-key') && !bool(args, 'sign')) throw new UsageError('--new-key goes with --sign: git zoo init --sign --new-key', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const r = await initZoo(repo)
    let signing: SigningSetup | undefined
    let sign = bool(args, 'sign')
    let newKey = bool(args, 'new-key')
    if (!sign && io.ask && !io.json && !(await signingConfigured(repo))
      && (await repo.runGit(['config', '--type=bool', '--get', 'zoo.sign'])).stdout.trim() !== 'false') {
      // a person at a terminal, and git does not sign: offer it once
      const key = await findSigningKey(repo).catch(() => undefined)
      const q = key ? `git does not sign your commits; sign promotions with ${key.pub}? [Y/n] `
        : 'git does not sign your commits and you have no SSH key; make one (ed25519, no passphrase, in ~/.ssh) and sign promotions with it? [y/N] '
      const a = (await io.ask(q)).trim().toLowerCase()
      sign = key ? a === '' || a.startsWith('y') : a.startsWith('y')
      newKey = sign && !key
      if (!sign) {
        await repo.git(['config', '--local', 'zoo.sign', 'false'])
        io.err('git zoo: not signing; `git zoo init --sign` sets it up later\n')
      }
    }
    if (sign) signing = await setUpSigning(repo, { newKey, with: ['.zoo', '.gitignore'] })
    if (bool(args, 'json')) {
      printJson(io, { ...r, ...(signing ? { signing } : {}) })
      return 0
    }
    io.err(hookNotes(r.hooks))
    for (const n of signing?.notes ?? []) io.err(`git zoo: ${n}\n`)
    // a new zoo names its chunks with BLAKE3 (.zoo-template): say so when it would be hashed in
    // JavaScript, ~100x slower than the native addon a C compiler builds (spec/native.md)
    const slow = r.created.includes('.zoo/config.json') ? blake3FallbackReason() : undefined
    if (slow) {
      io.err(`git zoo: note: this zoo's BLAKE3 chunk hashes will be computed in JavaScript here (${slow}), about 100x slower than git-zoo's native addon; `
        + 'install a C compiler (Debian: apt-get install gcc), then run `npm rebuild git-zoo` (or `npm run build` in a checkout)\n')
    }
    const hooks = r.hooks.filter((h) => h.action !== 'unchanged').map((h) => `${h.hook} hook ${h.action}`)
    const what = r.created.length || hooks.length
      ? `${r.created.includes('.zoo/config.json') ? 'initialized a zoo' : 'updated the zoo'} in ${r.root}${r.created.length ? `; ${signing?.signers === 'committed' ? 'committed' : 'staged'} ${r.created.join(', ')}` : ''}${hooks.length ? `; ${hooks.join(', ')}` : ''}`
      : `the zoo in ${r.root} is set up already`
    const signed = !signing ? ''
      : signing.signers === 'committed' ? `; promotions are signed with ${signing.key.pub}, listed in .zoo/allowed_signers in ${signing.commit!.slice(0, 12)}`
      : `; promotions are signed with ${signing.key.pub}${signing.signers === 'listed' ? ' (listed in .zoo/allowed_signers)' : ' (not yet in .zoo/allowed_signers, see above)'}`
    summary(io, `git zoo: ${what}${signed}`)
    return 0
  },
}
