/**
 * The audit behind `git zoo verify --signatures` and the status column of `git zoo log`
 * (spec/seal.md, "Signatures" and "The audit"). It walks the history of HEAD, the history the checked
 * out models come from, and reports every commit that:
 *   - breaks a commit rule (src/promote/precommit.ts): the pre-commit hook is advisory and
 *     `git commit --no-verify` skips it, so the rules are replayed here on every commit;
 *   - touches models/ without being a recorded promotion, retirement or evaluation (trailers naming
 *     exactly the manifests, RETIRED.json and evaluation records it adds, with their seals);
 *   - touches models/ or .zoo/allowed_signers without a good signature by an allowed signer, judged
 *     by the allowed signers AS OF ITS FIRST PARENT, so no commit can authorise itself.
 * Merges need no signature when they only combine their parents; content a merge introduces itself,
 * or a sealed version it drops, is reported.
 */
import { mkdtemp, writeFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Repo } from '../repo.js'
import { CatFile } from '../git/catfile.js'
import { SIGNERS_FILE } from './signing.js'
import { ZooError } from '../errors.js'
import { modelRules, parseModelPath, parseRawDiff, schemaAt, weightsProblems, type Change, type NewEvaluation, type RuleProblem } from './precommit.js'

/** The shape `git zoo verify` reports (src/zoo/verify.ts). */
export interface Problem { model: string; path: string | null; object: string | null; problem: string }

// the zoo's own list of allowed SSH signers: defined in signing.ts, which `add` loads (to warn about
// an unsigned promotion) without this module
export { SIGNERS_FILE }

/** git's %G? letters, in words. */
export const SIGNATURE_WORDS: Record<string, string> = {
  G: 'good', B: 'bad', U: 'unknown key', N: 'unsigned', X: 'expired', Y: 'expired key', R: 'revoked', E: 'cannot check',
}

export interface Signature {
  /** git's %G? letter, judged with the allowed signers named in `judgedBy`. */
  letter: string
  status: string
  /** The signer (SSH principal or GPG user id) when git could tell. */
  signer: string
  /** The key's fingerprint. */
  key: string
  judgedBy: string
  /** A good signature by an allowed signer. */
  ok: boolean
}

async function configuredSigners(repo: Repo): Promise<string | null> {
  const r = await repo.runGit(['config', '--type=path', '--get', 'gpg.ssh.allowedSignersFile'])
  const path = r.code === 0 ? r.stdout.trim() : ''
  if (!path) return null
  try { return (await stat(resolve(repo.root, path))).isFile() ? resolve(repo.root, path) : null } catch { return null }
}

interface SignerList { key: string; file: string | null; judgedBy: string; blob: string | null }

/**
 * Judges signatures. A list in `.zoo/allowed_signers` is itself trusted only when the commit that
 * wrote that version of it carries a good signature judged by a trusted list as of its own parent:
 * a chain back to git's `gpg.ssh.allowedSignersFile` (the verifier's own anchor).
 */
class Judge {
  private readonly lists = new Map<string, SignerList>()
  private readonly trust = new Map<string, Promise<boolean>>()
  private readonly verdicts = new Map<string, Signature>()
  private n = 0

  constructor(private readonly repo: Repo, private readonly cat: CatFile, private readonly tmp: string, private readonly userFile: string | null,
              private readonly known: ReadonlyMap<string, KnownCommit> = new Map()) {}

  async listAt(parent: string | null): Promise<SignerList> {
    const blob = parent ? await this.cat.read(`${parent}:${SIGNERS_FILE}`) : null
    const key = blob ? blob.oid : this.userFile ? 'user' : 'none'
    let l = this.lists.get(key)
    if (l) return l
    if (blob) {
      const file = join(this.tmp, `signers-${this.n++}`)
      await writeFile(file, blob.bytes)
      l = { key, file, judgedBy: `${SIGNERS_FILE} as of its parent`, blob: blob.oid }
    } else if (this.userFile) {
      l = { key, file: null, judgedBy: `gpg.ssh.allowedSignersFile (${this.userFile}); the parent has no ${SIGNERS_FILE}`, blob: null }
    } else {
      // an allowed-signers file is always passed: git 2.39 aborts on %G? without one
      const file = join(this.tmp, 'none')
      await writeFile(file, '')
      l = { key, file, judgedBy: `no allowed signers: the parent has no ${SIGNERS_FILE} and git has no gpg.ssh.allowedSignersFile (anchor trust once: put the founders' keys in a file and \`git config gpg.ssh.allowedSignersFile <file>\`)`, blob: null }
    }
    this.lists.set(key, l)
    return l
  }

  /** Whether the list in `parent`'s tree was written by a trusted, well-signed commit. */
  trusted(list: SignerList, parent: string | null): Promise<boolean> {
    if (!list.blob || !parent) return Promise.resolve(true)
    // Down a run of commits the audit has already diffed that are not merges and leave the signers
    // file alone, the writer is the same (what `git log -1 <parent> -- <file>` finds one git at a time).
    for (let k = this.known.get(parent); k && k.parents.length === 1 && !k.signers; k = this.known.get(parent)) parent = k.parents[0]!
    const writer = this.known.get(parent)
    if (writer && writer.parents.length <= 1 && writer.signers) {
      const memo = `${list.blob} ${parent}`
      let t = this.trust.get(memo)
      if (!t) {
        const sha = parent
        t = this.judge([{ sha, parent: writer.parents[0] ?? null }]).then((v) => v.get(sha)?.ok === true)
        this.trust.set(memo, t)
      }
      return t
    }
    const memo = `${list.blob} ${parent}`
    let t = this.trust.get(memo)
    if (!t) {
      t = (async () => {
        const r = await this.repo.runGit(['log', '-1', '--format=%H %P', parent, '--', SIGNERS_FILE])
        const [writer, ...parents] = r.stdout.trim().split(' ')
        if (r.code !== 0 || !writer) return false
        if (parents.length > 1) {
          // a merge passes on a parent's list; one it made up itself is not trusted
          for (const p of parents) {
            const b = await this.cat.read(`${p}:${SIGNERS_FILE}`, 0)
            if (b?.oid === list.blob) return this.trusted(list, p)
          }
          return false
        }
        const v = (await this.judge([{ sha: writer, parent: parents[0] ?? null }])).get(writer)
        return v?.ok === true
      })()
      this.trust.set(memo, t)
    }
    return t
  }

  async judge(commits: Array<{ sha: string; parent: string | null }>): Promise<Map<string, Signature>> {
    const out = new Map<string, Signature>()
    const groups = new Map<string, { list: SignerList; items: Array<{ sha: string; parent: string | null }> }>()
    for (const c of commits) {
      const known = this.verdicts.get(c.sha)
      if (known) { out.set(c.sha, known); continue }
      const list = await this.listAt(c.parent)
      const g = groups.get(list.key) ?? { list, items: [] }
      g.items.push(c)
      groups.set(list.key, g)
    }
    for (const { list, items } of groups.values()) {
      const args = [...(list.file ? ['-c', `gpg.ssh.allowedSignersFile=${list.file}`] : []), 'log', '--no-walk=unsorted', '--stdin', '--format=%H%x00%G?%x00%GS%x00%GF%x1e']
      const r = await this.repo.runGit(args, { input: items.map((c) => c.sha).join('\n') + '\n' })
      if (r.code !== 0) throw new ZooError(`git log could not check signatures: ${r.stderr.trim()}`, 'E_GIT')
      const letters = new Map<string, string[]>()
      for (const rec of r.stdout.split('\x1e')) {
        const [sha, ...rest] = rec.replace(/^\n/, '').split('\0')
        if (sha && rest.length) letters.set(sha, rest)
      }
      for (const c of items) {
        const [letter = 'E', signer = '', key = ''] = letters.get(c.sha) ?? []
        let v: Signature = { letter, status: SIGNATURE_WORDS[letter] ?? `unknown (${letter})`, signer, key, judgedBy: list.judgedBy, ok: letter === 'G' }
        if (v.ok && !(await this.trusted(list, c.parent))) {
          v = { ...v, status: 'untrusted signers list', ok: false, judgedBy: `${list.judgedBy}, which was written by a commit without a good signature by an allowed signer` }
        }
        this.verdicts.set(c.sha, v)
        out.set(c.sha, v)
      }
    }
    return out
  }
}

/** A commit's parents and whether it changed the signers file (for a merge: against some parent). */
export interface KnownCommit { parents: string[]; signers: boolean }

/**
 * Parents and signers-file changes of every commit in the history of `rev`, from two git runs
 * (`--full-history`, so no commit that changed the file is simplified away). For callers that do not
 * diff every commit themselves (`git zoo log`); the audit learns the same from its diff-tree run.
 */
export async function historyFacts(repo: Repo, rev: string): Promise<Map<string, KnownCommit>> {
  const [all, changed] = await Promise.all([
    repo.git(['rev-list', '--parents', rev, '--']),
    repo.git(['log', '--full-history', '--format=%H', rev, '--', SIGNERS_FILE]),
  ])
  const touched = new Set(changed.split('\n').filter(Boolean))
  const out = new Map<string, KnownCommit>()
  for (const line of all.split('\n')) {
    const [sha, ...parents] = line.trim().split(' ')
    if (sha) out.set(sha, { parents, signers: touched.has(sha) })
  }
  return out
}

/**
 * Each commit's signature, judged by `.zoo/allowed_signers` as of its parent when the parent has
 * one (and that list is trusted, see Judge), else by git's own `gpg.ssh.allowedSignersFile`, else
 * by nobody (every SSH key unknown). GPG signatures are judged by the GPG keyring's trust, as git does.
 */
export async function signatureStatuses(repo: Repo, commits: Array<{ sha: string; parent: string | null }>,
                                        known?: ReadonlyMap<string, KnownCommit>): Promise<Map<string, Signature>> {
  if (!commits.length) return new Map()
  const cat = new CatFile(repo.root, repo.env)
  const tmp = await mkdtemp(join(tmpdir(), 'git-zoo-signers-'))
  try {
    return await new Judge(repo, cat, tmp, await configuredSigners(repo), known).judge(commits)
  } finally {
    await cat.close()
    await rm(tmp, { recursive: true, force: true })
  }
}

/** Trailers of commits: `Zoo-Model`/`Zoo-Retire` each with the `Zoo-Seal` that follows it. */
export interface ZooTrailers { models: Map<string, string>; retires: Map<string, string>; evalData: Set<string>; batch?: number; code?: string }

export function parseTrailers(text: string): ZooTrailers {
  const t: ZooTrailers = { models: new Map(), retires: new Map(), evalData: new Set() }
  let last: { map: Map<string, string>; label: string } | null = null
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line.trim())
    if (!m) continue
    const [, key, value] = m
    if (key === 'Zoo-Model' || key === 'Zoo-Retire') {
      last = { map: key === 'Zoo-Model' ? t.models : t.retires, label: value!.trim() }
      last.map.set(last.label, '')
    } else if (key === 'Zoo-Seal' && last) {
      last.map.set(last.label, value!.trim())
      last = null
    } else if (key === 'Zoo-Eval-Data') {
      t.evalData.add(value!.trim())
    } else if (key === 'Zoo-Code') {
      t.code = value!.trim()
    } else if (key === 'Zoo-Models' && /^\d+$/.test(value!.trim())) {
      t.batch = Number(value)
    }
  }
  return t
}

export async function trailersOf(repo: Repo, shas: string[]): Promise<Map<string, ZooTrailers>> {
  const out = new Map<string, ZooTrailers>()
  if (!shas.length) return out
  const r = await repo.runGit(['log', '--no-walk=unsorted', '--stdin', '--format=%H%x00%(trailers:only,unfold)%x1e'], { input: shas.join('\n') + '\n' })
  if (r.code !== 0) throw new ZooError(`git log failed: ${r.stderr.trim()}`, 'E_GIT')
  for (const rec of r.stdout.split('\x1e')) {
    const [sha, text] = rec.replace(/^\n/, '').split('\0')
    if (sha) out.set(sha, parseTrailers(text ?? ''))
  }
  return out
}

/** `git diff-tree --stdin` output: each commit's changes against its parent. */
async function commitChanges(repo: Repo, shas: string[]): Promise<Map<string, Change[]>> {
  const out = new Map<string, Change[]>()
  if (!shas.length) return out
  const r = await repo.runGit(['diff-tree', '--stdin', '-r', '--raw', '--no-renames', '--no-abbrev', '--root', '-z'], { input: shas.join('\n') + '\n' })
  if (r.code !== 0) throw new ZooError(`git diff-tree failed: ${r.stderr.trim()}`, 'E_GIT')
  let cur: Change[] = []
  parseRawDiff(r.stdout, (sha) => { cur = []; out.set(sha, cur) }, (c) => cur.push(c))
  return out
}

function toProblem(p: RuleProblem, sha: string): Problem {
  return { model: p.model ?? p.path, path: p.path, object: sha, problem: p.problem }
}

export interface AuditOptions {
  /** Revisions whose history is audited; default HEAD. */
  revs?: string[]
}

export async function verifySignatures(repo: Repo, opts: AuditOptions = {}): Promise<Problem[]> {
  const revs = opts.revs ?? ['HEAD']
  if (revs.includes('HEAD') && (await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])).code !== 0) return []
  const list = (await repo.git(['rev-list', '--parents', ...revs, '--'])).trim().split('\n').filter(Boolean).map((l) => {
    const [sha, ...parents] = l.split(' ')
    return { sha: sha!, parents }
  })
  const problems: Problem[] = []
  const cat = new CatFile(repo.root, repo.env)
  try {
    const plain = list.filter((c) => c.parents.length <= 1)
    const changes = await commitChanges(repo, plain.map((c) => c.sha))
    const signed: Array<{ sha: string; parent: string | null; label: string }> = []
    const promotions: Recorded[] = []
    for (const c of plain) {
      const cs = changes.get(c.sha) ?? []
      if (!cs.length) continue
      const parent = c.parents[0] ?? null
      for (const p of await weightsProblems(cs, cat, `committed in ${c.sha.slice(0, 12)}`)) problems.push(toProblem(p, c.sha))
      const models = cs.filter((x) => x.path.startsWith('models/'))
      const signers = cs.some((x) => x.path === SIGNERS_FILE)
      if (!models.length && !signers) continue
      let label = signers && !models.length ? SIGNERS_FILE : ''
      if (models.length) {
        const { schema, problem } = await schemaAt(cat, parent)
        if (problem) problems.push(toProblem(problem, c.sha))
        // the reader (and the remotes behind a lazy clone) loaded here only: `add` reaches this module
        // for isSignedCommit, and must not load the remotes for it
        const r = await modelRules(cs, cat, { before: parent, after: c.sha }, schema, async (m) => (await import('../zoo/reader.js')).completeManifest(repo, m))
        for (const p of r.problems) problems.push(toProblem(p, c.sha))
        // every manifest added in a fresh version folder, valid or not, must be announced
        const added = [...new Set(models.filter((x) => x.status === 'A' && x.path.endsWith('/manifest.json')).map((x) => parseModelPath(x.path))
          .filter((mp): mp is Exclude<typeof mp, null | 'outside'> => mp !== null && mp !== 'outside' && mp.rest === 'manifest.json')
          .map((mp) => `${mp.name}@v${mp.version}`))]
        const seals = new Map<string, string>()
        for (const v of r.manifests) seals.set(v.model, v.manifest.seal)
        const codes = new Map(r.manifests.map((v) => [v.model, v.manifest.code ? `${v.manifest.code.commit}${v.manifest.code.dirty ? ' (dirty)' : ''}` : 'none']))
        for (const v of r.retirements) seals.set(`retire:${v.model}`, v.retirement.seal)
        const retired = r.retirements.map((v) => v.model)
        const evaluated = r.evaluations
        label = [...new Set([...added, ...retired, ...evaluated.map((e) => e.model)])].join(', ') || models[0]!.path
        promotions.push({ sha: c.sha, added, retired, evaluated, seals, codes, label })
      }
      signed.push({ sha: c.sha, parent, label })
    }
    const trailers = await trailersOf(repo, promotions.map((p) => p.sha))
    for (const p of promotions) problems.push(...trailerProblems(p, trailers.get(p.sha) ?? parseTrailers('')))
    const known = new Map<string, KnownCommit>()
    for (const c of plain) known.set(c.sha, { parents: c.parents, signers: (changes.get(c.sha) ?? []).some((x) => x.path === SIGNERS_FILE) })
    const sigs = await signatureStatuses(repo, signed, known)
    for (const s of signed) {
      const v = sigs.get(s.sha)
      if (!v || v.ok) continue
      const what = s.label === SIGNERS_FILE ? `a change to ${SIGNERS_FILE}` : 'a commit that touches models/'
      problems.push({ model: s.label, path: null, object: s.sha, problem: `${what} with signature ${v.status}${v.signer ? ` (signer ${v.signer})` : v.key ? ` (key ${v.key})` : ''}, judged by ${v.judgedBy}; it must carry a good signature by an allowed signer` })
    }
    const merges = list.filter((c) => c.parents.length > 1)
    const diffs = await mergeDiffs(repo, merges)
    for (const m of merges) problems.push(...await mergeProblems(cat, m.sha, m.parents, diffs.get(m.sha)!))
  } finally {
    await cat.close()
  }
  return problems
}

interface Recorded { sha: string; added: string[]; retired: string[]; evaluated: NewEvaluation[]; seals: Map<string, string>; codes: Map<string, string>; label: string }

function trailerProblems(p: Recorded, t: ZooTrailers): Problem[] {
  const out: Problem[] = []
  const add = (model: string, problem: string): void => { out.push({ model, path: null, object: p.sha, problem }) }
  if (t.batch !== undefined) {
    if (t.batch !== p.added.length) add(p.label, `the Zoo-Models trailer says ${t.batch} models, the commit adds ${p.added.length}`)
  } else {
    for (const m of p.added) {
      if (!t.models.has(m)) { add(m, 'not a recorded promotion: the commit adds this version without a Zoo-Model trailer (committed outside `git zoo add`?)'); continue }
      const seal = p.seals.get(m)
      if (seal && t.models.get(m) !== seal) add(m, `the Zoo-Seal trailer (${t.models.get(m) || 'missing'}) is not the manifest's seal ${seal}`)
    }
    for (const m of t.models.keys()) if (!p.added.includes(m) && !p.evaluated.some((e) => e.model === m)) add(m, 'the Zoo-Model trailer names a version this commit neither adds nor evaluates')
  }
  for (const [m, code] of p.codes) {
    if (t.code === undefined) add(m, 'the promotion has no Zoo-Code trailer naming the code revision')
    else if (t.code !== code) add(m, `the Zoo-Code trailer (${t.code}) is not the manifest's code revision (${code})`)
  }
  for (const m of p.retired) {
    if (!t.retires.has(m)) { add(m, 'not a recorded retirement: RETIRED.json added without a Zoo-Retire trailer (committed outside `git zoo retire`?)'); continue }
    const seal = p.seals.get(`retire:${m}`)
    if (seal && t.retires.get(m) !== seal) add(m, `the Zoo-Seal trailer (${t.retires.get(m) || 'missing'}) of the retirement is not the retired seal ${seal}`)
  }
  for (const m of t.retires.keys()) if (!p.retired.includes(m)) add(m, 'the Zoo-Retire trailer names a retirement this commit does not record')
  for (const e of p.evaluated) {
    if (t.models.get(e.model) !== e.seal || !t.evalData.has(e.data)) add(e.model, `not a recorded evaluation: ${e.path} added without the Zoo-Model, Zoo-Seal and Zoo-Eval-Data trailers \`git zoo eval\` writes`)
  }
  return out
}

/**
 * Each merge's changes against each of its parents, in parent order, from one `git diff-tree
 * --stdin` (a line `<merge> <parent>` per pair; --always prints the header of an empty diff too).
 */
async function mergeDiffs(repo: Repo, merges: Array<{ sha: string; parents: string[] }>): Promise<Map<string, Array<Map<string, Change>>>> {
  const out = new Map<string, Array<Map<string, Change>>>()
  if (!merges.length) return out
  const pairs = merges.flatMap((m) => m.parents.map((p) => `${m.sha} ${p}`))
  const r = await repo.runGit(['diff-tree', '--stdin', '--always', '-r', '--raw', '--no-renames', '--no-abbrev', '-z'], { input: pairs.join('\n') + '\n' })
  if (r.code !== 0) throw new ZooError(`git diff-tree failed: ${r.stderr.trim()}`, 'E_GIT')
  const diffs: Array<Map<string, Change>> = []
  let cur = new Map<string, Change>()
  parseRawDiff(r.stdout, () => { cur = new Map(); diffs.push(cur) }, (c) => cur.set(c.path, c))
  if (diffs.length !== pairs.length) throw new ZooError(`git diff-tree answered ${diffs.length} diffs for ${pairs.length} merge parents`, 'E_GIT')
  let i = 0
  for (const m of merges) out.set(m.sha, m.parents.map(() => diffs[i++]!))
  return out
}

/**
 * A merge only combines its parents. A change under models/ (or to the signers file) that matches
 * no parent was made by the merge itself; a sealed version of one parent that the merge drops or
 * replaces (two branches that promoted the same name@vN) is lost.
 */
async function mergeProblems(cat: CatFile, sha: string, parents: string[], diffs: Array<Map<string, Change>>): Promise<Problem[]> {
  const out: Problem[] = []
  const own: Change[] = []
  for (const [i, d] of diffs.entries()) {
    for (const c of d.values()) {
      const inherited = diffs.some((other, j) => j !== i && !other.has(c.path))
      if (!inherited) {
        if (i === 0) own.push(c)
        continue
      }
      const mp = parseModelPath(c.path)
      if (!mp || mp === 'outside') continue
      if (c.status === 'A' && mp.rest === 'RETIRED.json') continue
      const sealed = await cat.read(`${parents[i]}:${mp.dir}/manifest.json`, 0)
      if (sealed) out.push({ model: `${mp.name}@v${mp.version}`, path: c.path, object: sha, problem: `the merge ${c.status === 'D' ? 'drops' : 'replaces'} ${c.path} of the sealed version in parent ${parents[i]!.slice(0, 12)} (did two branches promote the same version?)` })
    }
  }
  for (const c of own) {
    const mp = parseModelPath(c.path)
    if (mp || c.path === SIGNERS_FILE) out.push({ model: mp && mp !== 'outside' ? `${mp.name}@v${mp.version}` : c.path, path: c.path, object: sha, problem: 'the merge commit changes this itself (it matches none of its parents); promote on a branch and merge, never edit models/ in a merge' })
  }
  for (const p of await weightsProblems(own, cat, `committed in merge ${sha.slice(0, 12)}`)) out.push(toProblem(p, sha))
  return out
}
