/**
 * Stages (spec/stages.md): names like prod, staging or candidate given to a model version, kept as
 * an append-only chain of annotated (signed when git signs) git tags. Each move of a stage is a new
 * tag `refs/tags/zoo-stage/<model>@<stage>/<n>` (n = 1, 2, ...) that is never moved or deleted:
 * the highest n is the stage's current state, and every earlier tag stays as the record of who moved
 * it where, when, and whether they signed. The tag points at the commit that promoted the version
 * and its message carries the facts as trailers, including the previous tag object of the chain.
 * This module reads them (one `git for-each-ref`); src/promote/stages.ts writes them.
 */
import { runGit, type GitEnv } from './git.js'
import { checkModelName } from '../manifest/names.js'
import { UsageError } from '../errors.js'

export const STAGE_REF_PREFIX = 'refs/tags/zoo-stage/'

/** A stage name: lower-case letter first, then letters, digits, `.`, `_`, `-`; not a version (vN). */
const STAGE = /^[a-z][a-z0-9._-]{0,63}$/

export function stageNameProblem(stage: string): string | undefined {
  if (!STAGE.test(stage)) return 'a stage is a lower-case letter followed by up to 63 lower-case letters, digits, `.`, `_` or `-` (e.g. prod, staging, candidate)'
  if (/^v\d+$/.test(stage)) return `${stage} reads as a version; name stages with words (prod, staging)`
  if (stage.endsWith('.lock') || stage.includes('..')) return 'a stage may not end in .lock or contain ..'
  return undefined
}

export function checkStageName(stage: string): string {
  const why = stageNameProblem(stage)
  if (why) throw new UsageError(`invalid stage name ${JSON.stringify(stage)}: ${why}`, 'E_BAD_NAME', { stage })
  return stage
}

/** `name@<stage>` (not `name@vN`): the model and the stage, or undefined when `ref` is no stage reference. */
export function parseStageRef(ref: string): { name: string; stage: string } | undefined {
  const at = ref.lastIndexOf('@')
  if (at <= 0) return undefined
  const stage = ref.slice(at + 1)
  if (/^v[0-9]/.test(stage) || /^baf[a-z2-7]{20,}$/.test(ref)) return undefined
  return { name: checkModelName(ref.slice(0, at)), stage: checkStageName(stage) }
}

/** The tag of the n-th move of `name@stage`, without refs/tags/. */
export function stageTagName(name: string, stage: string, n: number): string {
  return `zoo-stage/${name}@${stage}/${n}`
}

export interface StageMove {
  /** The tag's name (without refs/tags/) and its object id. */
  tag: string
  object: string
  name: string
  stage: string
  /** 1, 2, ...: the move's place in the stage's chain. */
  n: number
  action: 'set' | 'delete'
  /** The version the stage names after this move (set), or the one it stopped naming (delete). */
  version: number
  seal: string
  /** The version the stage named before this move, if any. */
  previousVersion?: number
  /** The object id of the previous tag of the chain ('' for the first). */
  previous: string
  /** The commit the tag points at (the promotion of `version`). */
  target: string
  tagger: string
  date: string
  message: string
  /** Whether the tag object carries a signature (judged by `judgeStageSignatures`). */
  signed: boolean
  /** What does not hold up: the trailers disagree with the tag's name, or the chain is broken. */
  problem?: string
}

/** The current state of a stage: the version it names (undefined after a delete), and its chain. */
export interface StageState { name: string; stage: string; version?: number; seal?: string; moves: StageMove[] }

const FORMAT = '%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(taggername) %(taggeremail)%00%(taggerdate:iso-strict)%00%(contents:subject)%00%(contents:body)%00%(contents:signature)%1e'

function trailer(body: string, key: string): string | undefined {
  const m = new RegExp(`^${key}: (.*)$`, 'm').exec(body)
  return m ? m[1]!.trim() : undefined
}

/** The message without its trailer paragraph. */
function messageOf(body: string): string {
  const paras = body.trim().split(/\n\s*\n/)
  const last = paras[paras.length - 1] ?? ''
  if (last && last.split('\n').every((l) => /^[A-Za-z0-9-]+: /.test(l))) paras.pop()
  return paras.join('\n\n').trim()
}

/**
 * Every stage of the zoo (or of one model), each with its chain of moves oldest first. A tag whose
 * trailers do not match its own name, or whose chain link does not name the tag before it, is kept
 * with a `problem`; a stage's current state comes from its last move without a problem.
 */
export async function readStages(root: string, env: GitEnv, model?: string): Promise<StageState[]> {
  // for-each-ref patterns match whole path components: list the prefix and filter by model here
  const r = await runGit(root, ['for-each-ref', `--format=${FORMAT}`, STAGE_REF_PREFIX], { env })
  if (r.code !== 0) return []
  const byStage = new Map<string, StageMove[]>()
  for (const rec of r.stdout.split('\x1e')) {
    const f = rec.replace(/^\n/, '').split('\0')
    if (f.length < 9) continue
    const [ref, object, type, peeled, tagger, date, subject, body, signature] = f as [string, string, string, string, string, string, string, string, string]
    const m = /^refs\/tags\/zoo-stage\/(.+)@([^@/]+)\/([1-9][0-9]*)$/.exec(ref)
    if (!m) continue
    const [, name, stage, nText] = m as unknown as [string, string, string, string]
    if (model && name !== model) continue
    const n = Number(nText)
    const tagName = ref.slice('refs/tags/'.length)
    const move: StageMove = {
      tag: tagName, object, name, stage, n, action: 'set', version: 0, seal: '', previous: '', target: peeled || object,
      tagger: tagger.trim(), date, message: messageOf(body), signed: signature.trim() !== '',
    }
    if (type !== 'tag') move.problem = 'a lightweight tag, not an annotated stage tag'
    else {
      const label = trailer(body, 'Zoo-Stage')
      const action = trailer(body, 'Zoo-Stage-Action')
      const moveNo = trailer(body, 'Zoo-Stage-Move')
      const model = /^(.+)@v([1-9][0-9]*)$/.exec(trailer(body, 'Zoo-Model') ?? '')
      const prevModel = /^(.+)@v([1-9][0-9]*)$/.exec(trailer(body, 'Zoo-Stage-Was') ?? '')
      move.seal = trailer(body, 'Zoo-Seal') ?? ''
      move.previous = (trailer(body, 'Zoo-Stage-Previous') ?? '').replace(/^none$/, '')
      if (action === 'set' || action === 'delete') move.action = action
      if (model) move.version = Number(model[2])
      if (prevModel) move.previousVersion = Number(prevModel[2])
      if (label !== `${name}@${stage}` || moveNo !== String(n) || !model || model[1] !== name || (action !== 'set' && action !== 'delete') || !move.seal) {
        move.problem = `its message does not describe ${tagName} (Zoo-Stage, Zoo-Stage-Move, Zoo-Stage-Action, Zoo-Model, Zoo-Seal)`
      }
      void subject
    }
    const key = `${name}@${stage}`
    const list = byStage.get(key)
    if (list) list.push(move); else byStage.set(key, [move])
  }
  const out: StageState[] = []
  for (const [key, moves] of [...byStage].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    moves.sort((a, b) => a.n - b.n)
    const at = key.lastIndexOf('@')
    const state: StageState = { name: key.slice(0, at), stage: key.slice(at + 1), moves }
    let prev: StageMove | undefined
    for (const mv of moves) {
      if (!mv.problem) {
        const expected = prev?.object ?? ''
        if (mv.n !== (prev?.n ?? 0) + 1) mv.problem = `the chain has a gap: move ${mv.n} follows move ${prev?.n ?? 0}`
        else if (mv.previous !== expected) mv.problem = `its Zoo-Stage-Previous (${mv.previous || 'none'}) is not the tag before it (${expected || 'none'})`
      }
      prev = mv
      if (mv.problem) continue
      if (mv.action === 'set') { state.version = mv.version; state.seal = mv.seal } else { delete state.version; delete state.seal }
    }
    out.push(state)
  }
  return out
}

/** `name@vN` -> its current stage names, for listings. */
export function stagesByVersion(states: StageState[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const s of states) {
    if (s.version === undefined) continue
    const key = `${s.name}@v${s.version}`
    const list = out.get(key)
    if (list) list.push(s.stage); else out.set(key, [s.stage])
  }
  for (const l of out.values()) l.sort()
  return out
}
