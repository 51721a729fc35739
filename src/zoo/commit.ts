/**
 * The one way the zoo commits what it writes (promotions, retirements, evaluation records): check
 * the signing policy and who is committing, write the files atomically, stage exactly them, commit
 * exactly them (signed when `.zoo/config.json` requires it; whatever else the user staged stays
 * staged), and on any failure put the work tree and index back as they were.
 */
import { readFile, rm, rmdir, writeFile, access } from 'node:fs/promises'
import { mkdirSync, writeFileSync, constants as fsConstants } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import type { Repo, ZooConfig } from '../repo.js'
import { writeFilesAtomic } from '../cas/atomic.js'
import { CheckError, UsageError } from '../errors.js'
import { runGit, writeTreeOver, gitFailed, knownObjectFormat } from '../git/git.js'
import { withCommitLock } from './commit-lock.js'
import { isOurs } from '../hooks.js'
import { recordCommitted } from './committed.js'
import { CatFile } from '../git/catfile.js'

/** `Name <email>` from git's user.name / user.email, or undefined when git knows neither. */
export async function gitIdentity(repo: Repo): Promise<string | undefined> {
  const name = (await repo.runGit(['config', 'user.name'])).stdout.trim()
  const email = (await repo.runGit(['config', 'user.email'])).stdout.trim()
  if (!name && !email) return undefined
  return email ? `${name} <${email}>` : name
}

/** Who is committing (recorded in manifests and retirements); E_NO_IDENTITY when git does not know. */
export async function requireIdentity(repo: Repo): Promise<string> {
  const who = await gitIdentity(repo)
  if (who === undefined) throw new UsageError('git does not know who you are; set `git config user.name` and `git config user.email` first', 'E_NO_IDENTITY')
  return who
}

/**
 * Refuse before anything is written when the zoo requires signed commits (`policy.require_signed`
 * in `.zoo/config.json`) and git has no signing key. Returns the config it checked.
 */
export async function checkSigningPolicy(repo: Repo, config?: ZooConfig): Promise<ZooConfig> {
  const c = config ?? await repo.config()
  if (!c.policy?.require_signed) return c
  const key = (await repo.runGit(['config', '--get', 'user.signingkey'])).stdout.trim()
  const format = (await repo.runGit(['config', '--get', 'gpg.format'])).stdout.trim() || 'openpgp'
  const defaultKey = format === 'ssh' ? (await repo.runGit(['config', '--get', 'gpg.ssh.defaultKeyCommand'])).stdout.trim() : ''
  if (!key && !defaultKey) {
    throw new CheckError('this zoo requires signed promotions (.zoo/config.json policy.require_signed) but git has no signing key; set one, e.g. `git config gpg.format ssh` and `git config user.signingkey ~/.ssh/id_ed25519.pub` (or a GPG key id)', 'E_UNSIGNED')
  }
  return c
}

/** A file to write and commit: `path` relative to the work tree; its bytes, or a file to copy them from. */
export type CommitFile = { path: string; data: string | Uint8Array } | { path: string; copyFrom: string }

export interface CommitFilesOptions {
  /** The commit message (subject, body, trailers). */
  message: string
  /** What is committed, for messages: "promotion", "retirement", "evaluation". */
  kind: string
  /** Completes "the <kind> commit was refused, so ..." (e.g. "nothing was promoted"). */
  refused: string
  /** The config already read (and its signing policy already checked) by the caller. */
  config?: ZooConfig
  /** Folders (relative) removed whole before writing: leftovers of an interrupted earlier attempt. */
  fresh?: string[]
  /**
   * An interruption (spec/teams.md): checked once the files are staged; during `git commit` it
   * stops git (SIGTERM) and waits for it. Then HEAD tells: the commit landed (it stands, returned as
   * usual) or it did not (rolled back, and the signal's reason is thrown).
   */
  signal?: AbortSignal
  /**
   * Named crash and pause points (spec/reliability.md): `after-write` (the files are in the work
   * tree, not staged) and `before-commit` (staged, not committed).
   */
  crashPoint?: (name: string) => void | Promise<void>
  /**
   * The caller built every file itself and vouches for the rules the pre-commit hook applies to
   * model folders (a promotion: manifests sealed, canonical and schema-checked, config snapshots
   * the bytes their digest was taken of, objects flushed to the store), and judges each file by the
   * hook's rules for any staged file (`ok`: no raw weights, the size limit outside the zoo's
   * folders). When every file passes and the schema the caller used is HEAD's, the commit hands the
   * hook the exact staged diff that was checked, so the hook has nothing to redo (spec/seal.md,
   * "Commits the zoo makes").
   */
  verified?: { ok: (path: string, bytes: Uint8Array) => boolean }
}

/** The environment variable naming the file that holds the staged diff a zoo commit checked in-process (hooks/pre-commit). */
export const VERIFIED_ENV = 'GIT_ZOO_VERIFIED'

/** Each repository's object format (sha1 or sha256), fixed when it was created: learned when it was opened, else asked once per process. */
const formats = new Map<string, Promise<string>>()
function objectFormat(repo: Repo): Promise<string> {
  const known = knownObjectFormat(repo.commonDir)
  if (known) return Promise.resolve(known)
  let f = formats.get(repo.commonDir)
  if (!f) {
    f = repo.runGit(['rev-parse', '--show-object-format']).then((r) => r.stdout.trim() || 'sha1')
    formats.set(repo.commonDir, f)
  }
  return f
}

/** Git's blob id of `bytes` in the repository's object format. */
function blobId(bytes: Uint8Array, format: string): string {
  return createHash(format === 'sha256' ? 'sha256' : 'sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}

/**
 * Whether every rule hooks/pre-commit applies holds for a commit that adds exactly `files` to HEAD,
 * judged here; false when one does not or cannot be judged here (then the hook runs its full check
 * and says what is wrong).
 */
async function hookRulesHold(repo: Repo, files: ReadonlyArray<{ path: string; data: Uint8Array }>, schemaInHead: string | undefined,
                             ok: (path: string, bytes: Uint8Array) => boolean): Promise<boolean> {
  let schema: Buffer | undefined
  try { schema = await readFile(join(repo.root, '.zoo', 'schema.json')) } catch { /* none */ }
  // the promotion checked its manifests against the work tree's schema; the hook checks against HEAD's
  if ((schema ? blobId(schema, await objectFormat(repo)) : undefined) !== schemaInHead) return false
  return files.every((f) => ok(f.path, f.data))
}

/**
 * The `git diff --cached --raw -z` text (hooks/pre-commit's STAGED_DIFF) of a commit that adds
 * exactly `files` to HEAD: what the hook is handed when `git commit` runs it (hookRulesHold first).
 */
async function stagedDiff(repo: Repo, files: ReadonlyArray<{ path: string; data: Uint8Array }>): Promise<string> {
  const format = await objectFormat(repo)
  const zeros = '0'.repeat(format === 'sha256' ? 64 : 40)
  const rows = files.map((f) => ({ path: Buffer.from(f.path), text: `:000000 100644 ${zeros} ${blobId(f.data, format)} A\0${f.path}\0` }))
  // git lists the index in byte order of the paths
  rows.sort((a, b) => Buffer.compare(a.path, b.path))
  return rows.map((r) => r.text).join('')
}

/**
 * Whether a commit interrupted by a signal landed: HEAD moved past `before` to a commit holding
 * `path`, the first file committed (a commit is all or nothing, so one path tells).
 */
async function landed(repo: Repo, before: string | undefined, path: string | undefined): Promise<boolean> {
  const head = await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])
  if (head.code !== 0 || head.stdout.trim() === before || path === undefined) return false
  return (await repo.runGit(['cat-file', '-e', `HEAD:${path}`])).code === 0
}

/** The work tree's folders that rollback never removes, even when they end up empty. */
const KEEP = new Set(['', '.', 'models'])

/** Remove `rel`'s folder and its parents while they are empty (never the work tree or models/). */
async function pruneEmpty(root: string, rel: string): Promise<void> {
  for (let dir = dirname(rel); !KEEP.has(dir); dir = dirname(dir)) {
    try { await rmdir(join(root, dir)) } catch { return }
  }
}

/**
 * Unstage the paths again. An interrupted `git commit` (or its hook's git) may still be letting go
 * of `index.lock` when the rollback starts: wait for it (up to 10 s) instead of leaving the paths
 * staged with their files gone.
 */
async function unstage(repo: Repo, pathspec: { input: string }): Promise<void> {
  for (let tries = 0; ; tries++) {
    const r = await repo.runGit(['reset', '-q', '--pathspec-from-file=-', '--pathspec-file-nul'], pathspec)
    if (r.code === 0 || tries === 100 || !r.stderr.includes('index.lock')) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Write `files`, stage them and commit exactly them in one commit; returns the commit id. The
 * signing policy is checked first (nothing is written when it refuses). Paths go to git on stdin,
 * so no command-line length limits how many. On failure (a refused commit: E_COMMIT_REFUSED, or any
 * error) the paths are unstaged, the files removed and the folders this left empty pruned.
 */
/** Commits of more files than this may be made with plumbing (commitDirect). */
const MANY_FILES = 16

/** The ref fast-import builds a direct commit's tree on (deleted in the transaction that moves HEAD). */
export const SCRATCH_REF = 'refs/zoo/commit-tree'

/** Hooks `git commit` runs besides pre-commit: when one is installed, a zoo commit goes through `git commit`. */
const COMMIT_HOOKS = ['pre-commit.zoo-chained', 'prepare-commit-msg', 'commit-msg', 'post-commit']

/**
 * Whether this commit may be made with plumbing instead of `git commit` (the same commit, index and
 * work tree, no hook process), and then whether to sign it: only when git would store each file's
 * bytes as they are (no CR, no filter, ident or working-tree-encoding attribute), `git commit` would
 * run no hook but the zoo's own pre-commit (whose check the caller made in-process), no merge,
 * cherry-pick or revert is under way (`git commit <paths>` refuses those), and no crash or pause test
 * waits for the hook (GIT_ZOO_CRASH_AT / GIT_ZOO_PAUSE_AT=hook-pre-commit).
 */
async function directCommit(repo: Repo, config: ZooConfig, files: ReadonlyArray<{ path: string; data: Uint8Array }>): Promise<{ sign: boolean } | null> {
  // `git add` would store other bytes than the file's: a line ending converted (a CR in the bytes,
  // with core.autocrlf or a text/eol attribute), or a filter, ident or working-tree-encoding attribute
  if (files.some((f) => f.data.includes(13))) return null
  const attrs = await repo.runGit(['check-attr', '-z', '--stdin', 'filter', 'ident', 'working-tree-encoding'], { input: files.map((f) => f.path).join('\0') + '\0' })
  const fields = attrs.stdout.split('\0')
  if (attrs.code !== 0) return null
  for (let i = 2; i < fields.length; i += 3) if (fields[i] !== 'unspecified' && fields[i] !== 'unset') return null
  if ((repo.env.GIT_ZOO_CRASH_AT ?? '').split(',').some((p) => p.trim() === 'hook-pre-commit') || repo.env.GIT_ZOO_PAUSE_AT?.trim() === 'hook-pre-commit') return null
  const names = ['hooks', 'MERGE_HEAD', 'CHERRY_PICK_HEAD', 'REVERT_HEAD']
  const r = await repo.runGit(['rev-parse', ...names.flatMap((n) => ['--git-path', n])])
  const paths = r.stdout.split('\n').filter(Boolean).map((p) => resolve(repo.root, p))
  if (r.code !== 0 || paths.length !== names.length) return null
  const [hooks, ...states] = paths as [string, ...string[]]
  const exists = async (p: string, mode = fsConstants.F_OK): Promise<boolean> => access(p, mode).then(() => true, () => false)
  for (const s of states) if (await exists(s)) return null
  for (const h of COMMIT_HOOKS) if (await exists(join(hooks, h), fsConstants.X_OK)) return null
  const pre = await readFile(join(hooks, 'pre-commit'), 'utf8').catch(() => null)
  if (pre !== null && !isOurs(pre) && await exists(join(hooks, 'pre-commit'), fsConstants.X_OK)) return null
  return { sign: await commitWillSign(repo, config) }
}

/**
 * Whether a zoo commit will be signed: `git commit` signs when the zoo requires it (-S) or git is
 * told to (commit.gpgsign); commit-tree only with -S. (The server declines such an add: a key may
 * ask for its passphrase on a terminal; src/cli/served.ts.)
 */
export async function commitWillSign(repo: Repo, config: ZooConfig): Promise<boolean> {
  if (config.policy?.require_signed) return true
  return (await repo.runGit(['config', '--type=bool', '--get', 'commit.gpgsign'])).stdout.trim() === 'true'
}

/** Write files without fsync: a direct commit's files are a checkout of blobs git made durable before HEAD moves. */
function writePlain(root: string, files: ReadonlyArray<{ path: string; data: Uint8Array }>): void {
  const dirs = new Set<string>()
  for (const f of files) {
    const dir = dirname(join(root, f.path))
    if (!dirs.has(dir)) { mkdirSync(dir, { recursive: true }); dirs.add(dir) }
    writeFileSync(join(root, f.path), f.data)
  }
}

/**
 * A commit of exactly `files` on top of HEAD, made with plumbing: fast-import writes the blobs and
 * the trees on their paths as one pack (src/git/git.ts writeTreeOver), `commit-tree` makes the
 * commit (signed when the zoo or `commit.gpgsign` asks), `update-index` stages exactly the paths
 * from the files written (their stat data too, so `git status` is clean; the blobs are in the pack
 * already, so no loose copy is written), and one `update-ref` transaction moves HEAD from the
 * commit it was built on and drops the scratch ref. A HEAD that moved meanwhile (a user's commit)
 * is built on again.
 */
async function commitDirect(repo: Repo, files: ReadonlyArray<{ path: string; data: Uint8Array }>, o: CommitFilesOptions, how: { sign: boolean },
                            pathspec: { input: string }, onStaged: () => void): Promise<string> {
  const signal = o.signal ? { signal: o.signal } : {}
  const subject = o.message.split('\n', 1)[0]!
  const format = await objectFormat(repo)
  const zeros = '0'.repeat(format === 'sha256' ? 64 : 40)
  try {
    for (let attempt = 1; ; attempt++) {
      const head = await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])
      const base = head.code === 0 ? head.stdout.trim() : null
      const tree = await writeTreeOver(repo.root, base, files, SCRATCH_REF, { env: repo.env, ...signal })
      const args = ['commit-tree', tree, ...(base ? ['-p', base] : []), ...(how.sign ? ['-S'] : [])]
      const c = await runGit(repo.root, args, { env: repo.env, input: o.message, ...signal })
      if (c.code !== 0) throw new CheckError(`the ${o.kind} commit was refused, so ${o.refused}:\n${gitFailed(args, c).message}`, 'E_COMMIT_REFUSED')
      const commit = c.stdout.trim()
      if (attempt === 1) {
        onStaged()
        await repo.git(['update-index', '--add', '-z', '--stdin'], pathspec)
        await o.crashPoint?.('before-commit')
      }
      o.signal?.throwIfAborted()
      const u = await runGit(repo.root, ['update-ref', '-m', `commit: ${subject}`, '--stdin'],
        { env: repo.env, input: `update HEAD ${commit} ${base ?? zeros}\ndelete ${SCRATCH_REF}\n` })
      if (u.code === 0) { recordCommitted(commit, how.sign); return commit }
      if (attempt === 3) throw gitFailed(['update-ref', 'HEAD', commit, base ?? zeros], u)
    }
  } catch (err) {
    await repo.runGit(['update-ref', '-d', SCRATCH_REF])
    throw err
  }
}

export async function commitFiles(repo: Repo, files: CommitFile[], o: CommitFilesOptions): Promise<string> {
  const config = o.config ?? await checkSigningPolicy(repo)
  // one zoo commit at a time in this repository (concurrent adds, retires, evals queue up)
  return withCommitLock(repo, () => commitLocked(repo, files, o, config), o.signal ? { signal: o.signal } : {})
}

/** The zoo's schema file: a promotion checked against it names it in the commit (`verified`). */
const SCHEMA = '.zoo/schema.json'

async function commitLocked(repo: Repo, files: CommitFile[], o: CommitFilesOptions, config: ZooConfig): Promise<string> {
  // every path the zoo commits is new (a version, a retirement, an evaluation record): one that is
  // in HEAD now was committed by another command while this one ran, and is never overwritten
  // (a few thousand paths per git process: a big batch's paths would not fit one command line)
  const paths = [...files.map((f) => f.path), ...(o.verified ? [SCHEMA] : [])]
  // one `git cat-file --batch` answers both lookups: HEAD and these paths now, the commit made after
  const cat = new CatFile(repo.root, repo.env)
  try {
    return await commitLookedUp(repo, files, o, config, paths, cat)
  } finally {
    // its input ends now and it exits on its own: the commit is not held up by waiting for that
    void cat.close()
  }
}

async function commitLookedUp(repo: Repo, files: CommitFile[], o: CommitFilesOptions, config: ZooConfig, paths: string[], cat: CatFile): Promise<string> {
  const { head: before, listed } = await headAndPaths(repo, paths, cat)
  const schemaInHead = listed.find((e) => e.path === SCHEMA)?.oid
  const taken = listed.filter((e) => e.path !== SCHEMA || files.some((f) => f.path === SCHEMA)).map((e) => e.path)
  if (taken.length) {
    throw new CheckError(`${taken[0]} was committed by another git zoo command while this one ran, so ${o.refused}; run the same command again (objects already stored are not stored again)`,
      'E_COMMITTED_MEANWHILE', { paths: taken })
  }
  const written: string[] = []
  const pathspec = { input: files.map((f) => f.path).join('\0') }
  let staged = false
  let token: string | undefined
  try {
    for (const dir of o.fresh ?? []) await rm(join(repo.root, dir), { recursive: true, force: true })
    // each file's bytes are read once: what is checked is what is written
    const bytes = o.verified ? await Promise.all(files.map(async (f) => 'data' in f ? (typeof f.data === 'string' ? Buffer.from(f.data) : f.data) : await readFile(f.copyFrom))) : undefined
    const dataOf = async (f: CommitFile, i: number): Promise<string | Uint8Array> => bytes ? bytes[i]! : 'data' in f ? f.data : await readFile(f.copyFrom)
    const checked = bytes ? files.map((f, i) => ({ path: f.path, data: bytes[i]! })) : undefined
    const verified = checked !== undefined && o.verified !== undefined && await hookRulesHold(repo, checked, schemaInHead, o.verified.ok)
    // a big commit the caller checked, in a repository where `git commit` would run no hook but
    // the zoo's own: made with plumbing (spec/import.md, "Cheap commits"); no hook, so no staged diff
    const direct = verified && files.length > MANY_FILES ? await directCommit(repo, config, checked!) : null
    if (direct) {
      written.push(...files.map((f) => f.path))
      writePlain(repo.root, checked!)
    } else {
      // written together, fsynced together, each folder fsynced once (src/cas/atomic.ts): a
      // promotion's manifest and card, or a big import's thousands of files
      written.push(...files.map((f) => f.path))
      await writeFilesAtomic(files.map((f, i) => ({ path: join(repo.root, f.path), data: () => dataOf(f, i) })))
    }
    if (verified && !direct) {
      token = join(repo.commonDir, `zoo-verified.${randomBytes(8).toString('hex')}`)
      await writeFile(token, await stagedDiff(repo, checked!))
    }
    await o.crashPoint?.('after-write')
    if (direct) return await commitDirect(repo, checked!, o, direct, pathspec, () => { staged = true })
    staged = true
    // exactly these paths (`git add <pathspec>` would walk every folder under their common prefix:
    // all of models/ once a zoo holds thousands of models)
    await repo.git(['update-index', '--add', '-z', '--stdin'], pathspec)
    await o.crashPoint?.('before-commit')
    o.signal?.throwIfAborted()
    const msgFile = join(repo.commonDir, `ZOO_COMMIT_MSG.${randomBytes(6).toString('hex')}`)
    await writeFile(msgFile, o.message)
    let c
    try {
      // git (and the pre-commit hook it runs) gets the interruption too; then HEAD says what happened
      c = await runGit(repo.root, ['commit', '-q', '-F', msgFile, ...(config.policy?.require_signed ? ['-S'] : []), '--pathspec-from-file=-', '--pathspec-file-nul'],
        { ...pathspec, env: token ? { ...repo.env, [VERIFIED_ENV]: token } : repo.env, ...(o.signal ? { signal: o.signal } : {}) })
        .catch(async (err: unknown) => {
          if (!o.signal?.aborted || !(await landed(repo, before, files[0]?.path))) throw err
          return { code: 0, stdout: '', stderr: '' }
        })
    } finally { await rm(msgFile, { force: true }); if (token) await rm(token, { force: true }) }
    if (c.code !== 0 && o.signal?.aborted) {
      if (await landed(repo, before, files[0]?.path)) c = { ...c, code: 0 }
      else throw o.signal.reason
    }
    if (c.code !== 0) throw new CheckError(`the ${o.kind} commit was refused, so ${o.refused}:\n${(c.stderr + c.stdout).trim()}`, 'E_COMMIT_REFUSED')
  } catch (err) {
    if (token) await rm(token, { force: true })
    if (staged) await unstage(repo, pathspec)
    for (const p of written) await rm(join(repo.root, p), { force: true })
    for (const p of written) await pruneEmpty(repo.root, p)
    throw err
  }
  return await committedHead(repo, cat)
}

/** Commits of fewer paths than this are looked up in HEAD with one `git cat-file --batch-check`, more with `git ls-tree`. */
const FEW_PATHS = 64

/**
 * HEAD (undefined before the first commit) and which of `paths` it holds, with their blob ids (a
 * path holding a folder is listed too: it is taken). A few paths cost one `git cat-file
 * --batch` (the caller's, which reads the commit back afterwards) that answers both (HEAD, then
 * `HEAD:<path>` for each); many paths, or one with a line break, `git ls-tree` of them a few thousand at a time and `git rev-parse` for HEAD.
 */
async function headAndPaths(repo: Repo, paths: string[], cat: CatFile): Promise<{ head: string | undefined; listed: Array<{ oid: string; path: string }> }> {
  if (paths.length <= FEW_PATHS && !paths.some((p) => /[\n\r]/.test(p))) {
    // asked together (answered in order); no object's bytes are kept
    const [head, ...found] = await Promise.all(['HEAD', ...paths.map((p) => `HEAD:${p}`)].map((spec) => cat.read(spec, 0)))
    if (!head || head.type !== 'commit') return { head: undefined, listed: [] }
    return { head: head.oid, listed: paths.flatMap((path, i) => { const o = found[i]; return o ? [{ oid: o.oid, path }] : [] }) }
  }
  const listed: Array<{ oid: string; path: string }> = []
  for (let at = 0; at < paths.length; at += 2000) {
    listed.push(...(await repo.runGit(['ls-tree', '-r', '-z', 'HEAD', '--', ...paths.slice(at, at + 2000)])).stdout.split('\0').filter(Boolean)
      .map((l) => { const tab = l.indexOf('\t'); return { oid: l.slice(0, tab).split(' ')[2]!, path: l.slice(tab + 1) } }))
  }
  const head = (await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])).stdout.trim()
  return { head: head || undefined, listed }
}

/**
 * The commit `git commit` just made, read by the `git cat-file --batch` that looked HEAD up before
 * (it resolves HEAD again for each request): its id, and whether it carries a signature (recorded:
 * src/zoo/committed.ts).
 */
async function committedHead(repo: Repo, cat: CatFile): Promise<string> {
  const o = await cat.read('HEAD').catch(() => null)
  if (!o || o.type !== 'commit') return (await repo.git(['rev-parse', 'HEAD'])).trim()
  const id = o.oid
  const body = o.bytes.toString('utf8')
  const end = body.indexOf('\n\n')
  recordCommitted(id, /^gpgsig(-sha256)? /m.test(end === -1 ? body : body.slice(0, end)))
  return id
}
