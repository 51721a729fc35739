/**
 * Setting up signed promotions for this repository (`git zoo init --sign`, spec/seal.md "Setting
 * up signing"): git signs every commit with the user's SSH key (gpg.format ssh, user.signingkey,
 * commit.gpgsign in this repository's config), and the key's line goes into `.zoo/allowed_signers`.
 *
 *   - the key: the one git already signs with (gpg.format ssh + user.signingkey), else the first of
 *     ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_ed25519_sk.pub, id_ecdsa_sk.pub, id_rsa.pub, else, only
 *     with the user's consent (`--new-key`), a new ed25519 key made by ssh-keygen without a
 *     passphrase at ~/.ssh/id_ed25519 (or ~/.ssh/git_zoo_ed25519 when that name is taken);
 *   - `.zoo/allowed_signers`: a zoo without one (its founder) gets it with this key, committed in
 *     one commit signed by that key together with the .zoo/ files `init` created; a zoo whose list
 *     lacks the key is left alone (the key would authorise itself): the line to give an allowed
 *     signer is returned;
 *   - the trust anchor (spec/seal.md): when git has no gpg.ssh.allowedSignersFile, this
 *     repository's config gets one, .git/zoo-allowed-signers, holding the committed list as it is
 *     now (the founder: their own key). That is trust on first use, said so in `notes`.
 */
import { execFile } from 'node:child_process'
import { readFile, stat, mkdir } from 'node:fs/promises'
import { join, resolve, isAbsolute } from 'node:path'
import type { Repo } from '../repo.js'
import { writeFileAtomic } from '../cas/atomic.js'
import { UsageError, ZooError } from '../errors.js'
import { signedAsCommitted } from '../zoo/committed.js'

/** The zoo's own list of allowed SSH signers, in git's allowed-signers format. */
export const SIGNERS_FILE = '.zoo/allowed_signers'

/** Public keys looked for in ~/.ssh, in this order. */
export const SSH_KEY_NAMES = ['id_ed25519', 'id_ecdsa', 'id_ed25519_sk', 'id_ecdsa_sk', 'id_rsa']

export interface SigningKey {
  /** The public key file git signs with (user.signingkey). */
  pub: string
  /** `<type> <base64>` of the public key. */
  key: string
  /** made: ssh-keygen made it now; found: in ~/.ssh; configured: git already named it. */
  source: 'configured' | 'found' | 'made'
}

export interface SigningSetup {
  key: SigningKey
  principal: string
  /** The line for .zoo/allowed_signers. */
  line: string
  /** committed: the list was created in `commit`; listed: the key was in it already; missing: see `line`. */
  signers: 'committed' | 'listed' | 'missing'
  commit?: string
  /** Config values set in this repository. */
  configured: Record<string, string>
  /** The trust anchor written (gpg.ssh.allowedSignersFile), when there was none. */
  anchor?: string
  notes: string[]
}

/** Whether git in this repository signs commits: commit.gpgsign and a key it can use. */
export async function signingConfigured(repo: Repo): Promise<boolean> {
  const sign = (await repo.runGit(['config', '--type=bool', '--get', 'commit.gpgsign'])).stdout.trim() === 'true'
  if (!sign) return false
  const key = (await repo.runGit(['config', '--get', 'user.signingkey'])).stdout.trim()
  const format = (await repo.runGit(['config', '--get', 'gpg.format'])).stdout.trim() || 'openpgp'
  return key !== '' || format === 'openpgp' || (await repo.runGit(['config', '--get', 'gpg.ssh.defaultKeyCommand'])).stdout.trim() !== ''
}

/** Whether a commit object carries a signature (a `gpgsig` header); says nothing of its validity. */
export async function isSignedCommit(repo: Repo, commit: string): Promise<boolean> {
  // a commit this process made was read as it was written (src/zoo/commit.ts)
  const known = signedAsCommitted(commit)
  if (known !== undefined) return known
  const r = await repo.runGit(['cat-file', 'commit', commit])
  if (r.code !== 0) return false
  const header = r.stdout.slice(0, r.stdout.indexOf('\n\n') === -1 ? undefined : r.stdout.indexOf('\n\n'))
  return /^gpgsig(-sha256)? /m.test(header)
}

/** `<type> <base64>` of an OpenSSH public key line, or undefined. */
function keyOf(line: string): string | undefined {
  const m = /(?:^|\s)((?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+)/.exec(line)
  return m?.[1]
}

async function isFile(path: string): Promise<boolean> {
  try { return (await stat(path)).isFile() } catch { return false }
}

function home(repo: Repo): string {
  const h = repo.env.HOME ?? repo.env.USERPROFILE
  if (!h) throw new UsageError('cannot find your home folder (HOME is not set) to look for an SSH key; set HOME, or name a key with `git config user.signingkey <key.pub>`', 'E_NO_SIGNING_KEY')
  return h
}

async function readPublicKey(path: string): Promise<string | undefined> {
  try { return keyOf(await readFile(path, 'utf8')) } catch { return undefined }
}

/** The SSH key git already signs with, else one in ~/.ssh, else undefined. */
export async function findSigningKey(repo: Repo): Promise<SigningKey | undefined> {
  const format = (await repo.runGit(['config', '--get', 'gpg.format'])).stdout.trim()
  const configured = (await repo.runGit(['config', '--get', 'user.signingkey'])).stdout.trim()
  if (configured) {
    if (format !== 'ssh') {
      throw new UsageError(`git signs with the GPG key ${configured} (gpg.format is ${format || 'openpgp'}); .zoo/allowed_signers lists SSH keys, so \`git zoo init --sign\` sets up SSH signing only: \`git config --unset user.signingkey\` first to let it pick an SSH key, or keep GPG and check signatures with your keyring`, 'E_NO_SIGNING_KEY')
    }
    const literal = keyOf(configured.replace(/^key::/, ''))
    if (literal) return { pub: configured, key: literal, source: 'configured' }
    const path = configured.startsWith('~/') ? join(home(repo), configured.slice(2)) : isAbsolute(configured) ? configured : resolve(repo.root, configured)
    const key = await readPublicKey(path) ?? await readPublicKey(`${path}.pub`)
    if (!key) throw new UsageError(`git's user.signingkey names ${configured}, which holds no SSH public key; point it at your key's .pub file (\`git config user.signingkey ~/.ssh/id_ed25519.pub\`)`, 'E_NO_SIGNING_KEY')
    return { pub: (await readPublicKey(path)) ? path : `${path}.pub`, key, source: 'configured' }
  }
  const ssh = join(home(repo), '.ssh')
  for (const name of SSH_KEY_NAMES) {
    const pub = join(ssh, `${name}.pub`)
    const key = await readPublicKey(pub)
    // git signs with the private key beside it (or the agent that holds it)
    if (key && (await isFile(join(ssh, name)) || repo.env.SSH_AUTH_SOCK)) return { pub, key, source: 'found' }
  }
  return undefined
}

/** Make an ed25519 key pair without a passphrase in ~/.ssh (with the user's consent). */
export async function makeSigningKey(repo: Repo, comment: string): Promise<SigningKey> {
  const ssh = join(home(repo), '.ssh')
  await mkdir(ssh, { recursive: true, mode: 0o700 })
  let priv = join(ssh, 'id_ed25519')
  if (await isFile(priv) || await isFile(`${priv}.pub`)) priv = join(ssh, 'git_zoo_ed25519')
  if (!(await isFile(priv))) {
    await new Promise<void>((res, rej) => execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', priv], { env: repo.env },
      (err, _out, stderr) => (err ? rej(new ZooError(`ssh-keygen could not make a key at ${priv}: ${(stderr || err.message).trim()}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (install OpenSSH: ssh-keygen is not on PATH)' : ''}`, 'E_SIGNING_SETUP', { path: priv })) : res())))
  }
  const key = await readPublicKey(`${priv}.pub`)
  if (!key) throw new ZooError(`${priv}.pub holds no SSH public key`, 'E_SIGNING_SETUP', { path: `${priv}.pub` })
  return { pub: `${priv}.pub`, key, source: 'made' }
}

/** The keys listed in an allowed-signers text. */
function listedKeys(text: string): Set<string> {
  const out = new Set<string>()
  for (const l of text.split('\n')) {
    if (l.trim().startsWith('#')) continue
    const k = keyOf(l)
    if (k) out.add(k)
  }
  return out
}

export interface SetUpOptions {
  /** Make a key when none is found (the user agreed). */
  newKey: boolean
  /** Paths committed with a new signers list (`init`: .zoo and .gitignore, its set-up). */
  with: string[]
}

/** Configure SSH signing for this repository and list the key in .zoo/allowed_signers (see above). */
export async function setUpSigning(repo: Repo, opts: SetUpOptions): Promise<SigningSetup> {
  const email = (await repo.runGit(['config', '--get', 'user.email'])).stdout.trim()
  if (!email) throw new UsageError('git does not know your email, which names you in .zoo/allowed_signers; set `git config user.email` first', 'E_NO_IDENTITY')
  const notes: string[] = []
  let key = await findSigningKey(repo)
  if (!key) {
    if (!opts.newKey) {
      throw new UsageError(`no SSH key to sign with: none in ${join(home(repo), '.ssh')} (looked for ${SSH_KEY_NAMES.map((n) => `${n}.pub`).join(', ')}) and git names none (user.signingkey); run \`git zoo init --sign --new-key\` to make one (ed25519, no passphrase) or name yours with \`git config user.signingkey <key.pub>\``, 'E_NO_SIGNING_KEY')
    }
    key = await makeSigningKey(repo, email)
    notes.push(`made a new SSH key ${key.pub.replace(/\.pub$/, '')} (ed25519, no passphrase; add one with \`ssh-keygen -p -f ${key.pub.replace(/\.pub$/, '')}\`)`)
  }
  const configured: Record<string, string> = { 'gpg.format': 'ssh', 'user.signingkey': key.pub, 'commit.gpgsign': 'true' }
  for (const [k, v] of Object.entries(configured)) await repo.git(['config', '--local', k, v])
  const line = `${email} namespaces="git" ${key.key}`

  // the trust anchor: the list as committed now (trust on first use), or this key for a new zoo
  const listPath = join(repo.root, SIGNERS_FILE)
  let text = ''
  try { text = await readFile(listPath, 'utf8') } catch { /* none yet */ }
  const committed = await repo.runGit(['show', `HEAD:${SIGNERS_FILE}`])
  let anchor: string | undefined
  if ((await repo.runGit(['config', '--get', 'gpg.ssh.allowedSignersFile'])).stdout.trim() === '') {
    anchor = resolve(repo.root, (await repo.git(['rev-parse', '--git-path', 'zoo-allowed-signers'])).trim())
    const trusted = committed.code === 0 && listedKeys(committed.stdout).size ? committed.stdout : `${line}\n`
    await writeFileAtomic(anchor, trusted)
    await repo.git(['config', '--local', 'gpg.ssh.allowedSignersFile', anchor])
    configured['gpg.ssh.allowedSignersFile'] = anchor
    if (committed.code === 0 && listedKeys(committed.stdout).size) {
      notes.push(`trusting the ${listedKeys(committed.stdout).size} signer(s) in ${SIGNERS_FILE} as committed now (trust on first use; the copy is ${anchor}): compare it with what your team publishes`)
    }
  }

  const listed = listedKeys(text)
  if (listed.has(key.key)) return { key, principal: email, line, signers: 'listed', configured, ...(anchor ? { anchor } : {}), notes }
  if (listed.size > 0 || committed.code === 0) {
    notes.push(`your key is not in ${SIGNERS_FILE}; until an allowed signer adds this line to it in a signed commit, \`git zoo verify --signatures\` calls your promotions "unknown key":\n  ${line}`)
    return { key, principal: email, line, signers: 'missing', configured, ...(anchor ? { anchor } : {}), notes }
  }
  await writeFileAtomic(listPath, (text && !text.endsWith('\n') ? `${text}\n` : text) + `${line}\n`)
  const paths: string[] = [SIGNERS_FILE]
  for (const p of opts.with) if (p !== SIGNERS_FILE && (await repo.runGit(['ls-files', '--error-unmatch', '--', p])).code === 0) paths.push(p)
  await repo.git(['add', '--', SIGNERS_FILE])
  const message = `zoo: set up signed promotions\n\n${email} signs promotions with ${key.key.split(' ')[0]} key ${key.key.split(' ')[1]!.slice(-16)};\nthe key is listed in ${SIGNERS_FILE}.\n`
  const c = await repo.runGit(['commit', '-q', '-S', '-m', message, '--', ...paths])
  if (c.code !== 0) {
    throw new ZooError(`the signing set-up commit failed (signing is configured and ${SIGNERS_FILE} is written and staged; commit it yourself once git can sign): ${(c.stderr + c.stdout).trim()}`, 'E_SIGNING_SETUP')
  }
  const commit = (await repo.git(['rev-parse', 'HEAD'])).trim()
  return { key, principal: email, line, signers: 'committed', commit, configured, ...(anchor ? { anchor } : {}), notes }
}
