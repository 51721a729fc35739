/**
 * The zoo's audit log (`git zoo log`, the web app's promotion log): every commit in HEAD's history
 * that touched models/, newest first, with its kind, the model versions it names (from the Zoo-*
 * trailers), author, date, message and signature status (judged as spec/seal.md says).
 */
import type { Repo } from '../repo.js'
import { parseModelRef } from '../manifest/names.js'
import { historyFacts, signatureStatuses, trailersOf, type Signature } from './signatures.js'
import { parseModelPath } from './precommit.js'

export interface LogEntry {
  commit: string
  kind: 'promotion' | 'retirement' | 'evaluation' | 'other'
  models: Array<{ name: string; version: number; seal: string | null }>
  author: string
  date: string
  subject: string
  message: string
  signature: Signature
}

const FORMAT = '%H%x00%P%x00%an <%ae>%x00%aI%x00%s%x00%b%x1e'

/** The log of the whole zoo, or of one model (`ref.version` set: of that version only). */
export async function readLog(repo: Repo, ref?: { name: string; version?: number }): Promise<LogEntry[]> {
  const entries: LogEntry[] = []
  if ((await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])).code !== 0) return entries
  const scope = ref ? `models/${ref.name}/` : 'models/'
  const text = await repo.git(['log', `--format=${FORMAT}`, 'HEAD', '--', scope])
  const raw = text.split('\x1e').map((r) => r.replace(/^\n/, '')).filter((r) => r.includes('\0')).map((r) => {
    const [commit, parents, author, date, subject, body] = r.split('\0')
    return { commit: commit!, parent: parents ? parents.split(' ')[0]! : null, author: author!, date: date!, subject: subject!, body: body ?? '' }
  })
  const trailers = await trailersOf(repo, raw.map((r) => r.commit))
  const sigs = await signatureStatuses(repo, raw.map((r) => ({ sha: r.commit, parent: r.parent })), await historyFacts(repo, 'HEAD'))
  for (const r of raw) {
    const t = trailers.get(r.commit)!
    let models = [...t.models].map(([label, seal]) => ({ ...parseModelRef(label), seal: seal || null }))
    const retired = [...t.retires].map(([label, seal]) => ({ ...parseModelRef(label), seal: seal || null }))
    if (t.batch !== undefined && models.length === 0) models = await addedIn(repo, r.commit)
    const all = [...models, ...retired].map((m) => ({ name: m.name, version: m.version ?? 0, seal: m.seal }))
    // `models/a/` also holds model a/b: keep only the entries about this model (and version)
    if (ref && all.length && !all.some((m) => m.name === ref.name && (ref.version === undefined || m.version === ref.version))) continue
    if (ref?.version !== undefined && !all.length) continue
    entries.push({
      commit: r.commit,
      kind: t.evalData.size && models.length ? 'evaluation' : retired.length && !models.length ? 'retirement' : models.length ? 'promotion' : 'other',
      models: all, author: r.author, date: r.date, subject: r.subject,
      message: withoutTrailers(r.body),
      signature: sigs.get(r.commit)!,
    })
  }
  return entries
}

async function addedIn(repo: Repo, sha: string): Promise<Array<{ name: string; version: number; seal: null }>> {
  const text = await repo.git(['diff-tree', '-r', '--root', '--no-renames', '--name-only', '--diff-filter=A', '-z', sha, '--', 'models/'])
  const out: Array<{ name: string; version: number; seal: null }> = []
  for (const p of text.split('\0')) {
    const mp = parseModelPath(p)
    if (mp && mp !== 'outside' && mp.rest === 'manifest.json') out.push({ name: mp.name, version: mp.version, seal: null })
  }
  return out
}

/** The body without its last paragraph when that paragraph is all trailers. */
function withoutTrailers(body: string): string {
  const paras = body.trim().split(/\n\s*\n/)
  const last = paras[paras.length - 1] ?? ''
  if (last && last.split('\n').every((l) => /^[A-Za-z0-9-]+: /.test(l))) paras.pop()
  return paras.join('\n\n').trim()
}
