/**
 * Pull integration (spec/teams.md, "Pull integration"): bringing the upstream history into a clone
 * whose unpushed promotions claim versions the upstream also promoted. The local promotions are
 * promoted again on top as the next free versions (re-sealed, re-signed through the user's git,
 * evaluation records, retirements, parent links and commit messages carried along), so nobody is
 * left in a conflict over zoo paths.
 *
 * How: git rebases the local commits (`git rebase -i`, the todo rewritten so that every local commit
 * touching models/ becomes `exec git-zoo pull --replay <sha>`); a replay step writes that commit's
 * zoo files again under their new numbers and commits them with `git commit`, so the user's
 * signing config and hooks apply. What was renumbered so far lives in `<git dir>/zoo-pull.json`
 * between steps, so a stopped rebase can be continued (`git zoo pull --continue`) or abandoned
 * (`git zoo pull --abort`). In merge mode the local commits are rewritten in place first (their
 * versions moved past the upstream's), then the upstream is merged: no sealed version is replaced.
 */
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import { runGit, type GitResult } from '../git/git.js'
import { CatFile } from '../git/catfile.js'
import { writeFileAtomic } from '../cas/atomic.js'
import { computeSeal, serializeManifest, parseManifest, manifestDir, MANIFEST_FILE, MODELS_DIR, type Manifest, type ManifestBody } from '../manifest/manifest.js'
import { committedCard, CARD_FILE } from '../manifest/card.js'
import { parseModelPath, sh } from './precommit.js'
import { parseRawDiff, type Change } from './staged.js'
import { RETIRED_FILE } from './retire.js'
import { CheckError, UsageError, ZooError } from '../errors.js'

export type PullMode = 'rebase' | 'merge' | 'ff-only'

/** One local promotion that now has another number. */
export interface Renumbered { name: string; from: number; to: number; old_seal: string; seal: string }

/** What `git zoo pull` keeps between the steps of one integration. */
export interface PullState {
  zoo_pull: 1
  mode: 'rebase' | 'merge'
  /** The upstream commit being integrated. */
  upstream: string
  /** HEAD before the integration began (where --abort goes back to). */
  orig_head: string
  /** Versions each model has upstream: local promotions must not take them. */
  upstream_versions: Record<string, number[]>
  /** Local commits (full ids) whose zoo files are replayed by `--replay`. */
  replay: string[]
  renumbered: Renumbered[]
  /** Old seal -> new { name, version, seal } for every local version rewritten (renumbered or re-parented). */
  seals: Record<string, { name: string; version: number; seal: string }>
  /** Merge mode: merge this after the local history is rewritten. */
  merge_after?: string
  /** Merge mode from `--continue`: the user's resolution of paths outside models/ (a tree id). */
  resolution_tree?: string
  /** The replay step committing now, and HEAD before it: a step run again after a kill knows it committed. */
  pending?: { sha: string; parent: string }
  /** Local commits replayed so far: a step run again (rescheduled by git) is a no-op. */
  done?: string[]
  /** A replay step whose changes outside models/ conflicted: the user resolves them in the index. */
  resolving?: string
}

export interface IntegrateHooks {
  /** The shell command git runs for a replay step (`<bin> pull --replay`) and as the sequence editor (`<bin> pull --edit-todo`). */
  bin: string
  /** git's own output, for the user. */
  onGitOutput: (text: string) => void
}

export interface IntegrateResult {
  /** What happened: nothing to do, a fast-forward, a plain git rebase/merge, or an integration with replayed promotions. */
  action: 'up-to-date' | 'fast-forward' | 'rebase' | 'merge'
  upstream: string
  renumbered: Renumbered[]
}

const STATE_FILE = 'zoo-pull.json'

async function gitDir(repo: Repo): Promise<string> {
  return (await repo.git(['rev-parse', '--absolute-git-dir'])).trim()
}

export async function readState(repo: Repo): Promise<PullState | null> {
  try { return JSON.parse(await readFile(join(await gitDir(repo), STATE_FILE), 'utf8')) as PullState } catch { return null }
}

async function writeState(repo: Repo, s: PullState): Promise<void> {
  await writeFileAtomic(join(await gitDir(repo), STATE_FILE), JSON.stringify(s, null, 2) + '\n')
}

async function clearState(repo: Repo): Promise<void> {
  await rm(join(await gitDir(repo), STATE_FILE), { force: true })
}

/** The git operation in progress in this work tree, if any. */
export async function inProgress(repo: Repo): Promise<'merge' | 'rebase-merge' | 'rebase-apply' | null> {
  const dir = await gitDir(repo)
  if (existsSync(join(dir, 'rebase-merge'))) return 'rebase-merge'
  if (existsSync(join(dir, 'rebase-apply'))) return 'rebase-apply'
  if (existsSync(join(dir, 'MERGE_HEAD'))) return 'merge'
  return null
}

function gitEnv(repo: Repo, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...repo.env, ...extra }
}

async function rev(repo: Repo, spec: string): Promise<string | null> {
  const r = await repo.runGit(['rev-parse', '--verify', '-q', `${spec}^{commit}`])
  return r.code === 0 ? r.stdout.trim() : null
}

async function isAncestor(repo: Repo, a: string, b: string): Promise<boolean> {
  return (await repo.runGit(['merge-base', '--is-ancestor', a, b])).code === 0
}

/** Versions of model `name` in `treeish` (its `models/<name>/v<N>/` folders holding a manifest). */
async function versionsOf(repo: Repo, treeish: string, name: string): Promise<number[]> {
  const r = await repo.runGit(['ls-tree', '-r', '-z', '--name-only', treeish, '--', `${MODELS_DIR}/${name}/`])
  if (r.code !== 0) return []
  const out: number[] = []
  for (const p of r.stdout.split('\0')) {
    const mp = parseModelPath(p)
    if (mp && mp !== 'outside' && mp.name === name && mp.rest === MANIFEST_FILE) out.push(mp.version)
  }
  return out.sort((a, b) => a - b)
}

/** The upstream's versions of every model the local side promoted since `base` (what a replay must not take). */
async function upstreamVersionsFor(repo: Repo, base: string, head: string, upstream: string): Promise<Record<string, number[]>> {
  const diff = await repo.git(['diff', '--name-only', '-z', '--diff-filter=A', base, head, '--', `${MODELS_DIR}/`])
  const names = new Set<string>()
  for (const p of diff.split('\0')) {
    const mp = parseModelPath(p)
    if (mp && mp !== 'outside') names.add(mp.name)
  }
  const out: Record<string, number[]> = {}
  for (const name of [...names].sort()) out[name] = await versionsOf(repo, upstream, name)
  return out
}

/** Manifests the local side added since `base` that `upstream` holds under the same version with other content. */
async function collisions(repo: Repo, base: string, head: string, upstream: string): Promise<string[]> {
  const diff = await repo.git(['diff', '--raw', '-z', '--no-renames', '--no-abbrev', base, head, '--', `${MODELS_DIR}/`])
  const out: string[] = []
  const cat = new CatFile(repo.root, repo.env)
  try {
    for (const c of parseRawDiff(diff)) {
      if (c.status !== 'A' || !c.path.endsWith(`/${MANIFEST_FILE}`)) continue
      const theirs = await cat.read(`${upstream}:${c.path}`, 0)
      if (theirs && theirs.oid !== c.newOid) out.push(c.path)
    }
  } finally { await cat.close() }
  return out
}

/** The pull mode from the flags, else git's branch.<name>.rebase / pull.rebase / pull.ff config, else rebase (spec/teams.md). */
export async function pullMode(repo: Repo, flag?: PullMode): Promise<PullMode> {
  if (flag) return flag
  const branch = (await repo.runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'])).stdout.trim()
  const own = branch ? (await repo.runGit(['config', '--get', `branch.${branch}.rebase`])).stdout.trim() : ''
  const r = (own || (await repo.runGit(['config', '--get', 'pull.rebase'])).stdout.trim()).toLowerCase()
  if (['true', 'merges', 'interactive', 'i', 'm', 'yes', 'on', '1'].includes(r)) return 'rebase'
  if (['false', 'no', 'off', '0'].includes(r)) return 'merge'
  const ff = (await repo.runGit(['config', '--get', 'pull.ff'])).stdout.trim().toLowerCase()
  if (ff === 'only') return 'ff-only'
  return 'rebase'
}

function passOutput(hooks: IntegrateHooks, r: GitResult): void {
  if (r.stdout) hooks.onGitOutput(r.stdout)
  if (r.stderr) hooks.onGitOutput(r.stderr)
}

function stopped(what: string, r: GitResult): ZooError {
  return new CheckError(`${what} stopped (git exit ${r.code}) on a conflict outside the zoo's paths, or a step that failed (see git's message above); resolve it (edit, \`git add\`), then run \`git zoo pull --continue\`, or \`git zoo pull --abort\` to go back`,
    'E_PULL_STOPPED', { code: r.code })
}

/** Refuse (E_PULL_IN_PROGRESS) while a merge or rebase, or an earlier `git zoo pull`, is unfinished. */
export async function checkNotInProgress(repo: Repo): Promise<void> {
  const op = await inProgress(repo)
  if (op) throw new CheckError(`a git ${op.startsWith('rebase') ? 'rebase' : 'merge'} is in progress; finish it with \`git zoo pull --continue\`, or \`git zoo pull --abort\` to go back`, 'E_PULL_IN_PROGRESS', { op })
  if (await readState(repo)) throw new CheckError('an earlier `git zoo pull` did not finish; run `git zoo pull --continue`, or `git zoo pull --abort` to go back', 'E_PULL_IN_PROGRESS', {})
}

/**
 * Integrate `upstream` into HEAD (already fetched). Fast-forwards when possible; otherwise a plain
 * git rebase/merge when no local promotion collides with the upstream's versions; otherwise the
 * replaying integration described in the module comment.
 */
export async function integrate(repo: Repo, upstream: string, mode: PullMode, hooks: IntegrateHooks,
                                extra: { resolutionTree?: string } = {}): Promise<IntegrateResult> {
  await checkNotInProgress(repo)
  const head = await rev(repo, 'HEAD')
  if (!head) {
    const r = await runGit(repo.root, ['merge', '--ff-only', upstream], { env: gitEnv(repo) })
    passOutput(hooks, r)
    if (r.code !== 0) throw new ZooError(`\`git merge --ff-only ${upstream.slice(0, 12)}\` failed (exit ${r.code})`, 'E_GIT', { code: r.code })
    return { action: 'fast-forward', upstream, renumbered: [] }
  }
  if (await isAncestor(repo, upstream, head)) return { action: 'up-to-date', upstream, renumbered: [] }
  if (await isAncestor(repo, head, upstream)) {
    const r = await runGit(repo.root, ['merge', '--ff-only', upstream], { env: gitEnv(repo) })
    passOutput(hooks, r)
    if (r.code !== 0) throw new ZooError(`\`git merge --ff-only\` to the upstream failed (exit ${r.code}); see git's message above (uncommitted changes in the way?)`, 'E_GIT', { code: r.code })
    return { action: 'fast-forward', upstream, renumbered: [] }
  }
  if (mode === 'ff-only') {
    throw new CheckError('the branch and its upstream have diverged, so it cannot be fast-forwarded (--ff-only or pull.ff=only); run `git zoo pull --rebase` or `git zoo pull --no-rebase` to integrate them', 'E_PULL_DIVERGED', {})
  }
  const base = (await repo.git(['merge-base', head, upstream])).trim()
  const clash = await collisions(repo, base, head, upstream)
  if (clash.length === 0 && !extra.resolutionTree) {
    const merges = mode === 'rebase' && (await repo.runGit(['config', '--get', 'pull.rebase'])).stdout.trim().toLowerCase() === 'merges'
    const args = mode === 'rebase' ? ['rebase', ...(merges ? ['--rebase-merges'] : []), upstream] : ['merge', '--no-edit', upstream]
    const r = await runGit(repo.root, args, { env: gitEnv(repo) })
    passOutput(hooks, r)
    if (r.code !== 0) throw stopped(`\`git ${args[0]}\``, r)
    return { action: mode, upstream, renumbered: [] }
  }
  const dirty = (await repo.git(['status', '--porcelain', '--untracked-files=no'])).trim()
  if (dirty) throw new CheckError(`local changes would be overwritten by the integration; commit or stash them first:\n${dirty}`, 'E_PULL_DIRTY', {})
  const upstreamVersions = await upstreamVersionsFor(repo, base, head, upstream)
  const replay = (await repo.git(['rev-list', '--reverse', `${base}..${head}`, '--', `${MODELS_DIR}/`])).trim().split('\n').filter(Boolean)
  const state: PullState = {
    zoo_pull: 1, mode, upstream, orig_head: head, upstream_versions: upstreamVersions, replay, renumbered: [], seals: {},
    ...(mode === 'merge' ? { merge_after: upstream } : {}),
    ...(extra.resolutionTree ? { resolution_tree: extra.resolutionTree } : {}),
  }
  await writeState(repo, state)
  return runIntegration(repo, state, hooks, base)
}

/** Run (or resume, with `base` null) the rebase, then the merge in merge mode; clear the state when done. */
async function runIntegration(repo: Repo, state: PullState, hooks: IntegrateHooks, base: string | null): Promise<IntegrateResult> {
  if (base !== null) {
    const onto = state.mode === 'rebase' ? state.upstream : base
    const args = ['rebase', '-i', '--reschedule-failed-exec', ...(state.mode === 'merge' ? ['--rebase-merges'] : []), '--onto', onto, base]
    const r = await runGit(repo.root, args, { env: gitEnv(repo, { GIT_SEQUENCE_EDITOR: `${hooks.bin} pull --edit-todo`, GIT_EDITOR: 'true' }) })
    passOutput(hooks, r)
    if (r.code !== 0) throw stopped('the rebase of your local commits', r)
  }
  return finish(repo, state, hooks)
}

async function finish(repo: Repo, state: PullState, hooks: IntegrateHooks): Promise<IntegrateResult> {
  if (state.mode === 'merge' && state.merge_after) {
    const merged = await isAncestor(repo, state.merge_after, 'HEAD')
    if (!merged) {
      const r = await runGit(repo.root, ['merge', '--no-edit', ...(state.resolution_tree ? ['--no-commit'] : []), state.merge_after], { env: gitEnv(repo) })
      passOutput(hooks, r)
      if (state.resolution_tree) {
        // the user's resolution of the paths outside models/, from the merge they started
        await repo.git(['restore', `--source=${state.resolution_tree}`, '--staged', '--worktree', '--', '.', `:(exclude)${MODELS_DIR}`])
        const unmerged = (await repo.git(['diff', '--name-only', '--diff-filter=U'])).trim()
        if (unmerged) throw stopped('the merge', r)
        const c = await runGit(repo.root, ['commit', '--no-edit'], { env: gitEnv(repo, { GIT_EDITOR: 'true' }) })
        passOutput(hooks, c)
        if (c.code !== 0) throw stopped('the merge commit', c)
      } else if (r.code !== 0) {
        throw stopped('the merge', r)
      }
    }
  }
  const latest = (await readState(repo)) ?? state
  await clearState(repo)
  return { action: state.mode, upstream: state.upstream, renumbered: latest.renumbered }
}

/** `--edit-todo <file>`: git's sequence editor. Local commits touching models/ become replay steps. */
export async function editTodo(repo: Repo, file: string, bin: string): Promise<void> {
  const state = await readState(repo)
  const text = await readFile(file, 'utf8')
  if (!state) return
  await writeFile(file, rewriteTodo(text, state.replay, bin))
}

export function rewriteTodo(text: string, replay: string[], bin: string): string {
  return text.split('\n').map((line) => {
    const m = /^(?:pick|p)\s+([0-9a-f]{4,40})(?:\s|$)/.exec(line)
    if (!m) return line
    const sha = replay.find((s) => s.startsWith(m[1]!))
    return sha ? `exec ${bin} pull --replay ${sha}` : line
  }).join('\n')
}

/** Replace each `name@vN` and seal the integration moved, in one pass (each occurrence names the original). */
export function rewriteText(text: string, state: Pick<PullState, 'renumbered' | 'seals'>): string {
  const versions = new Map(state.renumbered.map((r) => [`${r.name}@v${r.from}`, `${r.name}@v${r.to}`]))
  return text
    .replace(/([a-z0-9][a-z0-9._\-/]*)@v([1-9]\d*)(?![0-9])/g, (all: string) => versions.get(all) ?? all)
    .replace(/baf[a-z2-7]{20,}/g, (s: string) => state.seals[s]?.seal ?? s)
}

/**
 * `--replay <sha>`: one local commit's zoo files, written again on top of HEAD under their new
 * numbers, then committed with the original author and a rewritten message.
 */
export async function replayCommit(repo: Repo, sha: string,
                                   opts: { onNote: (text: string) => void; staged?: boolean; crashPoint?: (name: string) => void }): Promise<void> {
  const state = await readState(repo)
  if (!state) throw new UsageError('no `git zoo pull` is under way here (this step is run by the rebase `git zoo pull` starts)', 'E_PULL_NO_STATE', {})
  const parent = (await repo.git(['rev-parse', `${sha}^`])).trim()
  const head = (await repo.git(['rev-parse', 'HEAD'])).trim()
  if (state.done?.includes(sha)) return
  if (state.pending?.sha === sha && head !== state.pending.parent && await rev(repo, 'HEAD^') === state.pending.parent) {
    // this step was killed after its commit: it is done
    delete state.pending
    state.done = [...(state.done ?? []), sha]
    await writeState(repo, state)
    return
  }
  const resolved = opts.staged === true || state.resolving === sha
  const changes = parseRawDiff(await repo.git(['diff-tree', '-r', '--raw', '-z', '--no-renames', '--no-abbrev', parent, sha]))
  const cat = new CatFile(repo.root, repo.env)
  const written: string[] = []
  try {
    // Unchanged by the integration and already on top of its parent: keep the commit as it is.
    const affected = await needsRewrite(repo, cat, state, changes, sha)
    if (!affected && head === parent && !resolved) {
      await repo.git(['merge', '--ff-only', '-q', sha])
      state.done = [...(state.done ?? []), sha]
      await writeState(repo, state)
      return
    }
    const upstreamOf = (name: string): number[] => state.upstream_versions[name] ?? []
    const headVersions = (name: string): Promise<number[]> => versionsOf(repo, 'HEAD', name)
    const handled = new Set<string>()
    // new version folders first: later changes in the same commit may name them
    const fresh = changes.filter((c) => c.status === 'A' && c.path.endsWith(`/${MANIFEST_FILE}`))
      .map((c) => ({ c, mp: parseModelPath(c.path) }))
      .filter((x): x is { c: Change; mp: Exclude<ReturnType<typeof parseModelPath>, null | 'outside'> } => x.mp !== null && x.mp !== 'outside' && x.mp.rest === MANIFEST_FILE)
    for (const { c, mp } of fresh) {
      const text = await cat.text(c.newOid)
      if (text === null) throw new ZooError(`cannot read ${c.path} of ${sha}`, 'E_GIT', { sha, path: c.path })
      const m = parseManifest(text, `${sha.slice(0, 12)}:${c.path}`)
      const taken = new Set([...upstreamOf(m.name), ...await headVersions(m.name)])
      const headOid = (await cat.read(`HEAD:${c.path}`, 0))?.oid
      let version = m.version
      if (headOid === c.newOid) { // the very same promotion is already there
        for (const x of changes) if (x.path.startsWith(`${mp.dir}/`)) handled.add(x.path)
        continue
      }
      if (taken.has(version)) version = Math.max(0, ...taken) + 1
      const parents = m.parents.map((p) => {
        const moved = state.seals[p.seal]
        return moved ? { ...p, name: moved.name, version: moved.version, seal: moved.seal } : p
      })
      // the author's message names versions by their old numbers too (a fine-tune of name@v3)
      const message = m.message === undefined ? undefined
        : rewriteText(m.message, { renumbered: [...state.renumbered, { name: m.name, from: m.version, to: version, old_seal: m.seal, seal: '' }], seals: state.seals })
      let out: Manifest = m
      if (version !== m.version || message !== m.message || JSON.stringify(parents) !== JSON.stringify(m.parents)) {
        const { seal: _old, ...rest } = m
        const body: ManifestBody = { ...rest, version, parents, ...(message !== undefined ? { message } : {}) }
        out = { ...body, seal: computeSeal(body) }
        state.seals[m.seal] = { name: m.name, version, seal: out.seal }
        // a step run again (after a stop) finds the same numbers: keep one entry per version
        state.renumbered = state.renumbered.filter((r) => r.old_seal !== m.seal)
        if (version !== m.version) state.renumbered.push({ name: m.name, from: m.version, to: version, old_seal: m.seal, seal: out.seal })
      }
      const dir = manifestDir(m.name, version)
      await writeFileAtomic(join(repo.root, dir, MANIFEST_FILE), serializeManifest(out))
      written.push(`${dir}/${MANIFEST_FILE}`)
      const card = committedCard(out)
      if (card !== undefined) {
        await writeFileAtomic(join(repo.root, dir, CARD_FILE), card)
        written.push(`${dir}/${CARD_FILE}`)
      }
      if (m.config) {
        const blob = await cat.read(`${sha}:${mp.dir}/${m.config.path}`)
        if (!blob) throw new ZooError(`the config snapshot ${mp.dir}/${m.config.path} is missing from ${sha}`, 'E_GIT', { sha })
        await writeFileAtomic(join(repo.root, dir, m.config.path), blob.bytes)
        written.push(`${dir}/${m.config.path}`)
      }
      for (const x of changes) if (x.path.startsWith(`${mp.dir}/`) && [MANIFEST_FILE, CARD_FILE, m.config?.path].includes(x.path.slice(mp.dir.length + 1))) handled.add(x.path)
    }
    // records added beside a version: evaluation records and retirements follow their version
    for (const c of changes) {
      if (handled.has(c.path) || c.status !== 'A') continue
      const mp = parseModelPath(c.path)
      if (!mp || mp === 'outside') continue
      const isEval = /^evals\/[^/]+\.json$/.test(mp.rest)
      if (!isEval && mp.rest !== RETIRED_FILE) continue
      const text = await cat.text(c.newOid)
      if (text === null) continue
      let rec: Record<string, unknown>
      try { rec = JSON.parse(text) as Record<string, unknown> } catch { continue }
      const target = (isEval ? rec.model : rec) as { name?: unknown; version?: unknown; seal?: unknown } | undefined
      const moved = typeof target?.seal === 'string' ? state.seals[target.seal] : undefined
      const dir = moved ? manifestDir(moved.name, moved.version) : mp.dir
      if (moved && target) { target.version = moved.version; target.seal = moved.seal }
      const path = `${dir}/${mp.rest}`
      await writeFileAtomic(join(repo.root, path), moved ? JSON.stringify(rec, null, 2) + '\n' : text)
      written.push(path)
      handled.add(c.path)
    }
    if (written.length) await repo.git(['add', '--pathspec-from-file=-', '--pathspec-file-nul'], { input: written.join('\0') })
    // everything else in the commit (changes outside models/, say) as a patch
    const rest = changes.filter((c) => !handled.has(c.path)).map((c) => c.path)
    if (rest.length && !resolved) {
      const patch = await runGit(repo.root, ['diff-tree', '-p', '--binary', '--no-renames', parent, sha, '--', ...rest.map((p) => `:(literal)${p}`)], { env: gitEnv(repo) })
      if (patch.code !== 0) throw new ZooError(`git diff-tree failed: ${patch.stderr.trim()}`, 'E_GIT', { sha })
      const ap = await runGit(repo.root, ['apply', '--index', '--3way', '-'], { input: patch.stdout, env: gitEnv(repo) })
      if (ap.code !== 0) {
        state.resolving = sha
        await writeState(repo, state)
        throw new CheckError(`the changes of ${sha.slice(0, 12)} outside the model versions do not apply on top of the upstream:\n${(ap.stderr + ap.stdout).trim()}\nresolve them (edit, \`git add\`), then run \`git zoo pull --continue\` (or \`git zoo pull --abort\`)`, 'E_PULL_STOPPED', { sha })
      }
    }
    if (resolved && (await unmergedPaths(repo)).length) {
      throw new CheckError(`resolve the conflicts first (edit, \`git add\`): ${(await unmergedPaths(repo)).map(sh).join(' ')}; then run \`git zoo pull --continue\``, 'E_PULL_CONFLICT', { sha })
    }
    const staged = await repo.runGit(['diff', '--cached', '--quiet'])
    if (staged.code === 0) {
      opts.onNote(`git zoo: ${sha.slice(0, 12)} is already in the upstream; nothing to replay\n`)
      delete state.resolving
      state.done = [...(state.done ?? []), sha]
      await writeState(repo, state)
      return
    }
    const info = (await repo.git(['log', '-1', '--date=raw', '--format=%an%x00%ae%x00%ad%x00%B', sha]))
    const [an, ae, ad, ...body] = info.split('\0')
    const msg = rewriteText(body.join('\0').replace(/\n+$/, '\n'), state)
    const msgFile = join(await gitDir(repo), `ZOO_REPLAY_MSG.${sha.slice(0, 12)}`)
    await writeFile(msgFile, msg)
    // recorded before the commit: a step interrupted after committing must not lose what it moved
    state.pending = { sha, parent: head }
    await writeState(repo, state)
    const config = await repo.config()
    let c: GitResult
    try {
      c = await runGit(repo.root, ['commit', '-q', '--cleanup=verbatim', '-F', msgFile, ...(config.policy?.require_signed ? ['-S'] : [])],
        { env: gitEnv(repo, { GIT_AUTHOR_NAME: an, GIT_AUTHOR_EMAIL: ae, GIT_AUTHOR_DATE: ad }) })
    } finally { await rm(msgFile, { force: true }) }
    opts.crashPoint?.('pull-after-replay-commit')
    if (c.code !== 0) {
      throw new CheckError(`the replayed commit of ${sha.slice(0, 12)} was refused:\n${(c.stderr + c.stdout).trim()}\nfix what it says, commit, then run \`git zoo pull --continue\` (or \`git zoo pull --abort\`)`, 'E_COMMIT_REFUSED', { sha })
    }
    delete state.pending
    delete state.resolving
    state.done = [...(state.done ?? []), sha]
    await writeState(repo, state)
    written.length = 0
  } finally {
    await cat.close()
  }
}

/** Whether replaying `sha` changes anything: a version it adds is taken, or it names a moved seal. */
async function needsRewrite(repo: Repo, cat: CatFile, state: PullState, changes: Change[], sha: string): Promise<boolean> {
  for (const c of changes) {
    const mp = parseModelPath(c.path)
    if (!mp || mp === 'outside' || c.status !== 'A') continue
    if ((state.upstream_versions[mp.name] ?? []).includes(mp.version)) return true
    const headOid = (await cat.read(`HEAD:${c.path}`, 0))?.oid
    if (headOid && headOid !== c.newOid) return true
    const text = await cat.text(c.newOid)
    if (text && /baf[a-z2-7]{20,}/.test(text) && [...text.matchAll(/baf[a-z2-7]{20,}/g)].some((m) => state.seals[m[0]])) return true
  }
  const msg = await repo.git(['log', '-1', '--format=%B', sha])
  return rewriteText(msg, state) !== msg
}

// ---- continuing and abandoning ------------------------------------------------------------------

/** Paths with unresolved conflicts. */
async function unmergedPaths(repo: Repo): Promise<string[]> {
  return (await repo.git(['diff', '--name-only', '-z', '--diff-filter=U'])).split('\0').filter(Boolean)
}

const isZooPath = (p: string): boolean => p === MODELS_DIR || p.startsWith(`${MODELS_DIR}/`)

/**
 * `git zoo pull --continue`: finish an integration that stopped, or resolve the conflict a plain
 * `git pull` left over zoo paths (keeping the upstream's versions and promoting the local ones again
 * on top).
 */
export async function continuePull(repo: Repo, hooks: IntegrateHooks): Promise<IntegrateResult> {
  const op = await inProgress(repo)
  let state = await readState(repo)
  const dir = await gitDir(repo)
  if (op === 'merge') {
    const mergeHead = (await readFile(join(dir, 'MERGE_HEAD'), 'utf8')).trim().split('\n')[0]!
    if (state?.merge_after && state.merge_after !== mergeHead) throw new CheckError(`the merge in progress is not the one \`git zoo pull\` started; finish it with git, or \`git zoo pull --abort\``, 'E_PULL_IN_PROGRESS', {})
    const unmerged = await unmergedPaths(repo)
    const others = unmerged.filter((p) => !isZooPath(p))
    if (others.length) throw new CheckError(`resolve the conflicts outside the zoo first (edit, then \`git add\`): ${others.map(sh).join(' ')}; then run \`git zoo pull --continue\` again`, 'E_PULL_CONFLICT', { paths: others })
    // keep the user's resolution of everything outside models/; models/ is redone below
    if (unmerged.length) await repo.git(['rm', '-q', '--cached', '-r', '--', ...unmerged.map((p) => `:(literal)${p}`)])
    const tree = (await repo.git(['write-tree'])).trim()
    const a = await runGit(repo.root, ['merge', '--abort'], { env: gitEnv(repo) })
    if (a.code !== 0) throw new ZooError(`\`git merge --abort\` failed: ${a.stderr.trim()}`, 'E_GIT', {})
    await clearState(repo)
    if (state && state.orig_head !== (await rev(repo, 'HEAD'))) {
      // our own merge stopped after the local history was rewritten: merge again from there
      return integrateWithTree(repo, state, mergeHead, tree, hooks)
    }
    return integrate(repo, mergeHead, 'merge', hooks, { resolutionTree: tree })
  }
  if (op === 'rebase-apply') {
    const onto = (await readFile(join(dir, 'rebase-apply', 'onto'), 'utf8').catch(() => '')).trim()
    if (!onto) throw new CheckError('a `git am` is in progress, not a rebase; finish it with git first', 'E_PULL_IN_PROGRESS', {})
    const a = await runGit(repo.root, ['rebase', '--abort'], { env: gitEnv(repo) })
    if (a.code !== 0) throw new ZooError(`\`git rebase --abort\` failed: ${a.stderr.trim()}`, 'E_GIT', {})
    await clearState(repo)
    return integrate(repo, onto, 'rebase', hooks)
  }
  if (op === 'rebase-merge') {
    const onto = (await readFile(join(dir, 'rebase-merge', 'onto'), 'utf8')).trim()
    if (!state) {
      const origHead = (await readFile(join(dir, 'rebase-merge', 'orig-head'), 'utf8')).trim()
      const base = (await repo.git(['merge-base', origHead, onto])).trim()
      const upstreamVersions = await upstreamVersionsFor(repo, base, origHead, onto)
      const replay = (await repo.git(['rev-list', '--reverse', `${base}..${origHead}`, '--', `${MODELS_DIR}/`])).trim().split('\n').filter(Boolean)
      state = { zoo_pull: 1, mode: 'rebase', upstream: onto, orig_head: origHead, upstream_versions: upstreamVersions, replay, renumbered: [], seals: {} }
      await writeState(repo, state)
    }
    // the pick the rebase stopped at: the last step done (REBASE_HEAD may be left from an earlier stop)
    const done = (await readFile(join(dir, 'rebase-merge', 'done'), 'utf8').catch(() => '')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    const last = /^(?:pick|p)\s+([0-9a-f]{4,40})(?:\s|$)/.exec(done[done.length - 1] ?? '')
    const stoppedAt = last ? (await repo.git(['rev-parse', '--verify', `${last[1]}^{commit}`])).trim() : ''
    const unmerged = await unmergedPaths(repo)
    const others = unmerged.filter((p) => !isZooPath(p))
    if (others.length) throw new CheckError(`resolve the conflicts outside the zoo first (edit, then \`git add\`): ${others.map(sh).join(' ')}; then run \`git zoo pull --continue\` again`, 'E_PULL_CONFLICT', { paths: others })
    const added = stoppedAt
      ? parseRawDiff(await repo.git(['diff-tree', '-r', '--raw', '-z', '--no-renames', '--no-abbrev', `${stoppedAt}^`, stoppedAt, '--', `${MODELS_DIR}/`]))
      : []
    if (state.resolving) {
      // a replay step stopped on its changes outside models/; the user resolved them in the index
      await replayCommit(repo, state.resolving, { onNote: hooks.onGitOutput })
    } else if (added.length) {
      // the pick git stopped at touches models/: drop its zoo changes (conflicted or taken from
      // either side by hand); the replay writes them again under free numbers
      await repo.git(['reset', '-q', 'HEAD', '--', `${MODELS_DIR}/`])
      if ((await repo.runGit(['cat-file', '-e', `HEAD:${MODELS_DIR}`])).code === 0) await repo.git(['checkout', 'HEAD', '--', `${MODELS_DIR}/`])
      for (const c of added) {
        if (c.status === 'D') continue
        const inHead = (await repo.runGit(['cat-file', '-e', `HEAD:${c.path}`])).code === 0
        if (!inHead) await rm(join(repo.root, c.path), { force: true })
      }
      await replayCommit(repo, stoppedAt, { onNote: hooks.onGitOutput, staged: true })
    }
    // the rest of the todo: local commits touching models/ become replay steps
    const todoFile = join(dir, 'rebase-merge', 'git-rebase-todo')
    const todo = await readFile(todoFile, 'utf8').catch(() => null)
    if (todo !== null) await writeFile(todoFile, rewriteTodo(todo, state.replay, hooks.bin))
    const r = await runGit(repo.root, ['rebase', '--continue'], { env: gitEnv(repo, { GIT_EDITOR: 'true' }) })
    passOutput(hooks, r)
    if (r.code !== 0) throw stopped('the rebase', r)
    return finish(repo, (await readState(repo)) ?? state, hooks)
  }
  if (state) return finish(repo, state, hooks)
  throw new UsageError('there is nothing to continue: no merge or rebase is in progress and no `git zoo pull` stopped here', 'E_PULL_NOTHING', {})
}

async function integrateWithTree(repo: Repo, state: PullState, upstream: string, tree: string, hooks: IntegrateHooks): Promise<IntegrateResult> {
  const s: PullState = { ...state, merge_after: upstream, resolution_tree: tree }
  await writeState(repo, s)
  return finish(repo, s, hooks)
}

/** `git zoo pull --abort`: back to where the pull began. */
export async function abortPull(repo: Repo, hooks: IntegrateHooks): Promise<{ aborted: string[] }> {
  const op = await inProgress(repo)
  const state = await readState(repo)
  const done: string[] = []
  if (op === 'merge') {
    const r = await runGit(repo.root, ['merge', '--abort'], { env: gitEnv(repo) }); passOutput(hooks, r)
    if (r.code !== 0) throw new ZooError(`\`git merge --abort\` failed (exit ${r.code})`, 'E_GIT', {})
    done.push('merge')
  } else if (op) {
    const r = await runGit(repo.root, ['rebase', '--abort'], { env: gitEnv(repo) }); passOutput(hooks, r)
    if (r.code !== 0) throw new ZooError(`\`git rebase --abort\` failed (exit ${r.code})`, 'E_GIT', {})
    done.push('rebase')
  }
  if (state) {
    const head = await rev(repo, 'HEAD')
    if (head !== state.orig_head) {
      const r = await runGit(repo.root, ['reset', '-q', '--keep', state.orig_head], { env: gitEnv(repo) })
      if (r.code !== 0) throw new ZooError(`could not go back to ${state.orig_head.slice(0, 12)}: ${r.stderr.trim()}`, 'E_GIT', {})
      done.push('reset')
    }
    await clearState(repo)
  }
  if (!done.length && !state) throw new UsageError('there is nothing to abort: no merge or rebase is in progress and no `git zoo pull` stopped here', 'E_PULL_NOTHING', {})
  return { aborted: done }
}
