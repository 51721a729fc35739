/**
 * Moving stages (spec/stages.md): `git zoo tag <model>@vN <stage>` and `--delete`. Every move is a
 * new annotated tag `zoo-stage/<model>@<stage>/<n>` on the commit that promoted the version, signed
 * when the zoo requires signing or git signs commits or tags, whose message names the previous tag
 * of the chain; no tag is ever moved or removed, so the chain is the stage's audit log. Reading the
 * chains is src/git/stages.ts; judging their signatures is `judgeStageSignatures` below.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Repo } from '../repo.js'
import { checkSeal, manifestDir, parseManifest, MANIFEST_FILE, type Manifest } from '../manifest/manifest.js'
import { checkStageName, readStages, stageTagName, STAGE_REF_PREFIX, type StageMove, type StageState } from '../git/stages.js'
import { checkSigningPolicy, requireIdentity } from '../zoo/commit.js'
import { SIGNERS_FILE, SIGNATURE_WORDS } from './signatures.js'
import { CheckError, UnknownModelError, ZooError } from '../errors.js'

export interface StageOptions {
  /** Why the stage moves (the tag message's body). */
  message?: string
  /**
   * Named crash and pause points (spec/reliability.md): `tag-before-write` (everything checked,
   * nothing written) and `tag-after-write` (the tag is written).
   */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface StageResult {
  name: string
  stage: string
  /** The version the stage names now (undefined after a delete). */
  version?: number
  /** The version it named before. */
  previous?: number
  seal: string
  /** The tag written; null when the stage already named that version (nothing was written). */
  tag: string | null
  object: string | null
  signed: boolean
}

/** The commit in HEAD's history that added name@vN's manifest, and the manifest it added. */
async function promotionCommit(repo: Repo, name: string, version: number): Promise<{ commit: string; manifest: Manifest }> {
  const path = `${manifestDir(name, version)}/${MANIFEST_FILE}`
  const r = await repo.runGit(['log', '-1', '--format=%H', '--diff-filter=A', 'HEAD', '--', path])
  const commit = r.code === 0 ? r.stdout.trim() : ''
  if (!commit) throw new UnknownModelError(`${name}@v${version} is not a committed model version (no commit in this branch's history adds ${path}); only sealed, committed versions take a stage`, { name, version })
  const text = await repo.git(['show', `${commit}:${path}`])
  return { commit, manifest: parseManifest(text, `${path} (${commit.slice(0, 12)})`) }
}

/** Whether this tag should be signed: the zoo requires it, or git signs commits or tags. */
async function wantsSignature(repo: Repo, requireSigned: boolean): Promise<boolean> {
  if (requireSigned) return true
  for (const key of ['tag.gpgSign', 'commit.gpgSign']) {
    const r = await repo.runGit(['config', '--type=bool', '--get', key])
    if (r.code === 0 && r.stdout.trim() === 'true') return true
  }
  return false
}

/** Write the next tag of `name@stage`'s chain (a retry when another process took the number). */
async function writeMove(repo: Repo, state: StageState | undefined, name: string, stage: string, body: (n: number, previous: string) => string,
                         target: string, sign: boolean, o: StageOptions): Promise<{ tag: string; object: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-tag-'))
  try {
    let moves = state?.moves ?? []
    for (let attempt = 0; ; attempt++) {
      const last = moves[moves.length - 1]
      const n = (last?.n ?? 0) + 1
      const tag = stageTagName(name, stage, n)
      const file = join(dir, `msg-${randomBytes(4).toString('hex')}`)
      await writeFile(file, body(n, last?.object ?? ''))
      await o.crashPoint?.('tag-before-write')
      const r = await repo.runGit(['tag', sign ? '-s' : '-a', '-F', file, '--cleanup=verbatim', tag, target])
      if (r.code === 0) {
        await o.crashPoint?.('tag-after-write')
        const object = (await repo.git(['rev-parse', `refs/tags/${tag}`])).trim()
        return { tag, object }
      }
      if (/already exists/.test(r.stderr) && attempt < 3) {
        // another `git zoo tag` took this number first: continue its chain
        moves = (await readStages(repo.root, repo.env, name)).find((s) => s.stage === stage)?.moves ?? []
        continue
      }
      throw new ZooError(`\`git tag ${tag}\` failed, so the stage was not moved: ${(r.stderr || r.stdout).trim()}`, 'E_GIT', { tag })
    }
  } finally { await rm(dir, { recursive: true, force: true }) }
}

function trailers(fields: Array<[string, string | undefined]>): string {
  return fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n'
}

/**
 * Give `ref` (name@vN, a bare name, another stage or a seal) the stage `stage`. Refused before
 * anything is written when the version is not committed, its manifest does not match its seal, it
 * is retired, or signing is required and git cannot sign. A stage that already names the version
 * is left as it is (tag: null).
 */
export async function setStage(repo: Repo, ref: string, stageName: string, o: StageOptions = {}): Promise<StageResult> {
  const stage = checkStageName(stageName)
  const m = await repo.resolve(ref)
  const label = `${m.name}@v${m.version}`
  const { commit, manifest } = await promotionCommit(repo, m.name, m.version)
  if (manifest.seal !== m.seal || !checkSeal(manifest).ok) {
    throw new CheckError(`${label}: the committed manifest does not match its seal (or the work tree's); run \`git zoo verify\` before giving it a stage`, 'E_SEAL_MISMATCH', { name: m.name, version: m.version })
  }
  const retired = await repo.retirement(m.name, m.version)
  if (retired) throw new CheckError(`${label} is retired (${retired.reason}); a stage names a version in service: pick another version`, 'E_RETIRED_STAGE', { name: m.name, version: m.version })
  const state = (await repo.stages(m.name)).find((s) => s.stage === stage)
  if (state?.version === m.version) return { name: m.name, stage, version: m.version, previous: m.version, seal: m.seal, tag: null, object: null, signed: false }
  const config = await checkSigningPolicy(repo)
  const who = await requireIdentity(repo)
  const sign = await wantsSignature(repo, Boolean(config.policy?.require_signed))
  const was = state?.version
  const { tag, object } = await writeMove(repo, state, m.name, stage, (n, previous) =>
    `zoo: stage ${m.name}@${stage} = v${m.version}${was !== undefined ? ` (was v${was})` : ''}\n\n` +
    (o.message ? `${o.message.trim()}\n\n` : '') +
    trailers([['Zoo-Stage', `${m.name}@${stage}`], ['Zoo-Stage-Move', String(n)], ['Zoo-Stage-Action', 'set'], ['Zoo-Model', label], ['Zoo-Seal', m.seal],
      ['Zoo-Stage-Was', was !== undefined ? `${m.name}@v${was}` : undefined], ['Zoo-Stage-Previous', previous || 'none'], ['Zoo-Stage-By', who]]),
  commit, sign, o)
  return { name: m.name, stage, version: m.version, ...(was !== undefined ? { previous: was } : {}), seal: m.seal, tag, object, signed: sign }
}

/** End `name`'s stage `stage`: a move that names no version, recorded like any other. */
export async function deleteStage(repo: Repo, name: string, stageName: string, o: StageOptions = {}): Promise<StageResult> {
  const stage = checkStageName(stageName)
  const state = (await repo.stages(name)).find((s) => s.stage === stage)
  if (!state || state.version === undefined) {
    throw new UnknownModelError(`model ${name} has no stage ${stage}${state ? ' (it was deleted already)' : ''}; \`git zoo show ${name}\` lists its stages`, { name, stage })
  }
  const was = state.version
  const { commit } = await promotionCommit(repo, name, was)
  const config = await checkSigningPolicy(repo)
  const who = await requireIdentity(repo)
  const sign = await wantsSignature(repo, Boolean(config.policy?.require_signed))
  const { tag, object } = await writeMove(repo, state, name, stage, (n, previous) =>
    `zoo: stage ${name}@${stage} deleted (was v${was})\n\n` +
    (o.message ? `${o.message.trim()}\n\n` : '') +
    trailers([['Zoo-Stage', `${name}@${stage}`], ['Zoo-Stage-Move', String(n)], ['Zoo-Stage-Action', 'delete'], ['Zoo-Model', `${name}@v${was}`], ['Zoo-Seal', state.seal ?? ''],
      ['Zoo-Stage-Was', `${name}@v${was}`], ['Zoo-Stage-Previous', previous || 'none'], ['Zoo-Stage-By', who]]),
  commit, sign, o)
  return { name, stage, previous: was, seal: state.seal ?? '', tag, object, signed: sign }
}

export interface StageSignature { status: string; signer: string; ok: boolean; judgedBy: string }

/**
 * Judge each move's signature with the allowed signers committed at HEAD (`.zoo/allowed_signers`,
 * itself covered by the commit audit), else git's gpg.ssh.allowedSignersFile. Statuses as `git zoo
 * log` words them: good, unknown key, bad, unsigned.
 */
export async function judgeStageSignatures(repo: Repo, moves: StageMove[]): Promise<Map<string, StageSignature>> {
  const out = new Map<string, StageSignature>()
  const signed = moves.filter((m) => m.signed)
  for (const m of moves) if (!m.signed) out.set(m.object, { status: SIGNATURE_WORDS.N!, signer: '', ok: false, judgedBy: '' })
  if (!signed.length) return out
  const dir = await mkdtemp(join(tmpdir(), 'zoo-signers-'))
  try {
    let judgedBy: string
    let file: string | undefined
    const list = await repo.runGit(['show', `HEAD:${SIGNERS_FILE}`])
    if (list.code === 0) {
      file = join(dir, 'allowed_signers')
      await writeFile(file, list.stdout)
      judgedBy = `${SIGNERS_FILE} at HEAD`
    } else {
      const user = (await repo.runGit(['config', '--type=path', '--get', 'gpg.ssh.allowedSignersFile'])).stdout.trim()
      if (user) { file = resolve(repo.root, user); judgedBy = `gpg.ssh.allowedSignersFile (${user})` } else {
        file = join(dir, 'none')
        await writeFile(file, '')
        judgedBy = 'no allowed signers'
      }
    }
    for (const m of signed) {
      const r = await repo.runGit(['-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-tag', '--raw', m.object])
      const text = `${r.stderr}\n${r.stdout}`
      const good = /Good "git" signature for (\S+)/.exec(text) ?? /GOODSIG \S+ (.*)/.exec(text)
      if (r.code === 0 && good) out.set(m.object, { status: SIGNATURE_WORDS.G!, signer: good[1]!.trim(), ok: true, judgedBy })
      else if (/No principal matched|not trusted|NO_PUBKEY|ERRSIG|unknown/i.test(text)) out.set(m.object, { status: SIGNATURE_WORDS.U!, signer: '', ok: false, judgedBy })
      else out.set(m.object, { status: SIGNATURE_WORDS.B!, signer: '', ok: false, judgedBy })
    }
  } finally { await rm(dir, { recursive: true, force: true }) }
  return out
}

/** The zoo-stage tags on a git remote: tag name (without refs/tags/) -> tag object id. */
async function remoteStageTags(repo: Repo, remote: string): Promise<Map<string, string>> {
  const r = await repo.runGit(['ls-remote', '--refs', remote, `${STAGE_REF_PREFIX}*`])
  if (r.code !== 0) throw new ZooError(`\`git ls-remote ${remote}\` failed: ${(r.stderr || r.stdout).trim()}`, 'E_GIT', { remote })
  const out = new Map<string, string>()
  for (const line of r.stdout.split('\n')) {
    const [sha, ref] = line.trim().split(/\s+/)
    if (sha && ref?.startsWith(STAGE_REF_PREFIX)) out.set(ref.slice('refs/tags/'.length), sha)
  }
  return out
}

/** Local stage moves whose tag name the remote holds with another tag object: both sides moved the stage. */
export async function divergentStageMoves(repo: Repo, remote: string): Promise<StageMove[]> {
  const theirs = await remoteStageTags(repo, remote)
  const out: StageMove[] = []
  for (const s of await repo.stages()) for (const mv of s.moves) { const o = theirs.get(mv.tag); if (o && o !== mv.object) out.push(mv) }
  return out
}

export interface ReplayedMove { name: string; stage: string; action: 'set' | 'delete'; version?: number; was: string; tag: string | null }

/**
 * After `git fetch`: where the remote's chain of a stage and the local one both made move n, the
 * remote's moves stand and the local ones from there on are made again on top of them (new tags,
 * by whoever pulls, with the same versions by seal and the same messages), as `git zoo pull` does
 * with clashing promotions. The local tags that lost are removed; nothing had pushed them.
 */
export async function integrateStages(repo: Repo, remote: string, o: StageOptions = {}, renumbered: ReadonlyMap<string, string> = new Map()): Promise<ReplayedMove[]> {
  const theirs = await remoteStageTags(repo, remote)
  const replay: StageMove[] = []
  for (const s of await repo.stages()) {
    // from the first move the remote made differently, or the first local-only move of a version
    // the pull renumbered (its seal changed), the local moves are made again
    const first = s.moves.findIndex((mv) => { const t = theirs.get(mv.tag); return (t !== undefined && t !== mv.object) || (t === undefined && renumbered.has(mv.seal)) })
    if (first === -1) continue
    for (const mv of s.moves.slice(first)) if (theirs.get(mv.tag) !== mv.object) replay.push(mv)
  }
  if (!replay.length) return []
  for (const mv of replay) await repo.git(['tag', '-d', mv.tag])
  // the stage's state is read back from the tags, so a deleted stage is replayed only when it still stands
  const f = await repo.runGit(['fetch', '--no-tags', remote, `${STAGE_REF_PREFIX}*:${STAGE_REF_PREFIX}*`])
  if (f.code !== 0) throw new ZooError(`\`git fetch ${remote} ${STAGE_REF_PREFIX}*\` failed: ${(f.stderr || f.stdout).trim()}; your stage moves ${replay.map((m) => m.tag).join(', ')} were removed locally and can be made again with \`git zoo tag\``, 'E_GIT', { remote })
  const out: ReplayedMove[] = []
  for (const mv of replay) {
    const why = [mv.message, `(made as ${mv.tag} by ${mv.tagger}, ${mv.date}; made again after the remote's moves by git zoo pull)`].filter(Boolean).join('\n\n')
    if (mv.action === 'set') {
      const r = await setStage(repo, renumbered.get(mv.seal) ?? mv.seal, mv.stage, { ...o, message: why })
      out.push({ name: mv.name, stage: mv.stage, action: 'set', ...(r.version !== undefined ? { version: r.version } : {}), was: mv.tag, tag: r.tag })
    } else {
      const state = (await repo.stages(mv.name)).find((s) => s.stage === mv.stage)
      if (state?.version === undefined) { out.push({ name: mv.name, stage: mv.stage, action: 'delete', was: mv.tag, tag: null }); continue }
      const r = await deleteStage(repo, mv.name, mv.stage, { ...o, message: why })
      out.push({ name: mv.name, stage: mv.stage, action: 'delete', was: mv.tag, tag: r.tag })
    }
  }
  return out
}

/**
 * The stage part of `git zoo verify --signatures`: every move of every stage must hold up (its
 * trailers describe its own tag, its chain link names the tag before it), point at a commit whose
 * manifest has the seal it records, and carry a good signature by an allowed signer (judged as
 * `git zoo log` does), like every promotion.
 */
export async function stageProblems(repo: Repo): Promise<Array<{ model: string; path: string | null; object: string | null; problem: string }>> {
  const moves = (await repo.stages()).flatMap((s) => s.moves)
  if (!moves.length) return []
  const sigs = await judgeStageSignatures(repo, moves)
  const out: Array<{ model: string; path: string | null; object: string | null; problem: string }> = []
  for (const mv of moves) {
    const label = `${mv.name}@${mv.stage}`
    const path = `refs/tags/${mv.tag}`
    if (mv.problem) { out.push({ model: label, path, object: mv.object, problem: `stage move ${mv.tag} does not hold up: ${mv.problem}` }); continue }
    const mpath = `${manifestDir(mv.name, mv.version)}/${MANIFEST_FILE}`
    const r = await repo.runGit(['show', `${mv.target}:${mpath}`])
    let seal: string | undefined
    try { seal = r.code === 0 ? parseManifest(r.stdout, mpath).seal : undefined } catch { seal = undefined }
    if (seal !== mv.seal) out.push({ model: label, path, object: mv.object, problem: `stage move ${mv.tag} names ${mv.name}@v${mv.version} with seal ${mv.seal}, but the commit it points at ${seal ? `holds seal ${seal}` : `has no readable ${mpath}`}` })
    const sig = sigs.get(mv.object)!
    if (!sig.ok) out.push({ model: label, path, object: mv.object, problem: `stage move ${mv.tag} by ${mv.tagger} is not signed by an allowed signer (signature: ${sig.status}${sig.judgedBy ? `, judged by ${sig.judgedBy}` : ''})` })
  }
  return out
}
