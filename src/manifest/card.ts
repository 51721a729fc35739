/**
 * The model card written beside each manifest (`README.md`): front matter a Hugging Face user knows
 * (base_model, base_model_relation, datasets, tags, license, model-index) and a readable body, and
 * the same facts for the terminal (`git zoo show`). Both are derived from the manifest alone; the
 * manifest stays the sealed source of truth. Layout in spec/catalog.md ("Model cards").
 */
import type { Manifest } from './manifest.js'

export const CARD_FILE = 'README.md'

/** Our relation words -> the Hugging Face `base_model_relation` vocabulary (adapter, merge, quantized, finetune). */
export const HF_RELATION: Record<string, string> = {
  'fine-tune': 'finetune', finetune: 'finetune', adapter: 'adapter', merge: 'merge', soup: 'merge',
  quantized: 'quantized', sparsified: 'finetune', pruned: 'finetune', distilled: 'finetune', continued: 'finetune', derived: 'finetune',
}

/** Whether lower values of a metric are better (losses, errors, gaps); used by `best.<metric>` and cards. */
export function metricGoal(key: string): 'min' | 'max' {
  return /(loss|err(or)?s?$|error|mse|mae|rmse|perplexity|ppl|wer|cer|gap|latency)/i.test(key) ? 'min' : 'max'
}

const MAIN_METRICS = ['test_acc', 'test_accuracy', 'accuracy', 'acc', 'eval_accuracy', 'val_acc', 'val_accuracy', 'top1', 'f1',
  'test_loss', 'eval_loss', 'val_loss', 'loss']

/** The metric a card plots and a table shows first. */
export function mainMetric(keys: Iterable<string>): string | undefined {
  const list = [...keys].filter((k) => k !== 'epoch')
  return MAIN_METRICS.find((k) => list.includes(k)) ?? list.find((k) => /acc/i.test(k)) ?? list[0]
}

const BARS = '▁▂▃▄▅▆▇█'

/** A one-line curve: one bar per value (resampled to at most `width`). */
export function sparkline(values: number[], width = 60): string {
  if (values.length === 0) return ''
  const pts = values.length <= width ? values : Array.from({ length: width }, (_, i) => values[Math.round(i * (values.length - 1) / (width - 1))]!)
  const lo = Math.min(...pts), hi = Math.max(...pts)
  return pts.map((v) => BARS[hi === lo ? 3 : Math.round((v - lo) / (hi - lo) * (BARS.length - 1))]).join('')
}

export function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v)
  const a = Math.abs(v)
  return a !== 0 && (a < 1e-4 || a >= 1e6) ? v.toExponential(4) : v.toPrecision(6).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')
}

export function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0; let v = n
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`
}

function yamlString(s: string): string { return JSON.stringify(s) }

export interface MetricFacts { key: string; final?: number; best?: number; bestEpoch?: number; goal: 'min' | 'max' }

/** Final value, best value and the epoch it was reached at, for every metric. */
export function metricFacts(m: Pick<Manifest, 'metrics' | 'history' | 'best'>): MetricFacts[] {
  // a format 2 manifest read without its checkpoint node has no history: its `best` map gives the bests
  const stored = !m.history?.length ? m.best ?? {} : {}
  const keys = [...new Set([...Object.keys(m.metrics), ...Object.keys(stored), ...(m.history ?? []).flatMap((h) => Object.keys(h))])].filter((k) => k !== 'epoch')
  return keys.map((key) => {
    const goal = metricGoal(key)
    let best: number | undefined = stored[key]?.value, bestEpoch: number | undefined = stored[key]?.epoch
    ;(m.history ?? []).forEach((h, i) => {
      const v = h[key]
      if (v === undefined) return
      if (best === undefined || (goal === 'max' ? v > best : v < best)) { best = v; bestEpoch = h.epoch ?? i }
    })
    const final = m.metrics[key] ?? (m.history?.length ? m.history[m.history.length - 1]![key] : undefined)
    return { key, goal, ...(final !== undefined ? { final } : {}), ...(best !== undefined ? { best, bestEpoch: bestEpoch! } : {}) }
  })
}

/** The main metric's values over the history, with their epochs. */
export function curve(m: Pick<Manifest, 'metrics' | 'history'>): { key: string; epochs: number[]; values: number[] } | undefined {
  const key = mainMetric(new Set([...(m.history ?? []).flatMap((h) => Object.keys(h))]))
  if (!key || !m.history?.length) return undefined
  const epochs: number[] = [], values: number[] = []
  m.history.forEach((h, i) => { if (h[key] !== undefined) { epochs.push(h.epoch ?? i); values.push(h[key]!) } })
  return values.length >= 2 ? { key, epochs, values } : undefined
}

/** Checkpoint count, first and last epoch: from a format 2 manifest's summary, else from its files. */
function checkpointFacts(m: Manifest): { count: number; first: number; last: number } | undefined {
  if (m.checkpoints) return { count: m.checkpoints.count, first: m.checkpoints.epochs[0], last: m.checkpoints.epochs[1] }
  const epochs = [...new Set(m.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch!))].sort((a, b) => a - b)
  if (epochs.length === 0) return undefined
  return { count: epochs.length, first: epochs[0]!, last: epochs[epochs.length - 1]! }
}

function checkpointSummary(m: Manifest): string | undefined {
  const c = checkpointFacts(m)
  if (!c) return undefined
  return `${c.count} checkpoint${c.count === 1 ? '' : 's'} (epoch${c.count === 1 ? '' : 's'} ${c.first}${c.count > 1 ? `-${c.last}` : ''})`
}

/** File count and bytes of a version: a format 2 manifest's own files plus its checkpoint summary (a complete view lists them all). */
function fileTotals(m: Manifest): { count: number; bytes: number } {
  const own = m.checkpoints ? m.files.filter((f) => f.epoch === undefined) : m.files
  const count = own.length + (m.checkpoints?.files ?? 0)
  const bytes = own.reduce((a, f) => a + f.size, 0) + (m.checkpoints?.bytes ?? 0)
  return { count, bytes }
}

function hfRelation(m: Manifest): string | undefined {
  if (m.parents.length === 0) return undefined
  const rels = m.parents.map((p) => HF_RELATION[p.relation] ?? 'finetune')
  return m.parents.length > 1 || rels.includes('merge') ? 'merge' : rels[0]
}

/** The licence as the Hub's front matter takes it (lower-case ids: apache-2.0, mit, cc-by-4.0, other). */
function license(m: Manifest): string {
  const l = (m as Record<string, unknown>).license ?? m.params.license
  return typeof l === 'string' && l ? l.toLowerCase() : 'other'
}

/** Front matter keys the card writes itself; the same keys in a given card's front matter are dropped. */
const OWN_KEYS = new Set(['base_model', 'base_model_relation', 'datasets', 'tags', 'license', 'model-index'])

/**
 * A given card (`add --card`, sealed as `card_text`) split into its front matter blocks (top-level
 * YAML keys with their indented lines; the card's own keys dropped) and its markdown body.
 */
export function splitCardText(text: string): { frontMatter: string[]; body: string; tags: string[] } {
  const fields = parseFrontMatter(text).fields
  const tags = Array.isArray(fields.tags) ? fields.tags : typeof fields.tags === 'string' ? [fields.tags] : []
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(text)
  if (!m) return { frontMatter: [], body: text.trim(), tags }
  const lines = m[1]!.split(/\r?\n/)
  const out: string[] = []
  let keep = false
  for (const line of lines) {
    const key = /^([A-Za-z0-9_-]+):/.exec(line)
    if (key) keep = !OWN_KEYS.has(key[1]!)
    else if (line.trim() !== '' && !/^[\s-]/.test(line)) keep = false
    if (keep) out.push(line)
  }
  return { frontMatter: out, body: text.slice(m[0].length).trim(), tags }
}

function unquote(v: string): string {
  const t = v.trim()
  if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) { try { return JSON.parse(t) as string } catch { return t.slice(1, -1) } }
  if (t.startsWith("'") && t.endsWith("'") && t.length >= 2) return t.slice(1, -1).replace(/''/g, "'")
  return t
}

/**
 * The front matter of a model card (a Hugging Face README), read as far as cards need: top-level
 * keys with a scalar, a `[a, b]` flow list or a `- item` list of scalars; any other (nested) value
 * is kept as its raw lines in `blocks`. Not a YAML parser; what it does not understand it leaves raw.
 */
export function parseFrontMatter(text: string): { fields: Record<string, string | string[]>; blocks: Record<string, string>; body: string } {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(text)
  if (!m) return { fields: {}, blocks: {}, body: text }
  const fields: Record<string, string | string[]> = {}
  const blocks: Record<string, string> = {}
  let key: string | undefined
  let raw: string[] = []
  const close = (): void => {
    if (key === undefined) return
    const items = raw.filter((l) => l.trim() !== '')
    if (items.length && items.every((l) => /^\s*- [^:]*$|^\s*- ["'].*["']\s*$/.test(l))) fields[key] = items.map((l) => unquote(l.replace(/^\s*- /, '')))
    else if (items.length) blocks[key] = raw.join('\n')
    key = undefined
    raw = []
  }
  for (const line of m[1]!.split(/\r?\n/)) {
    const k = /^([A-Za-z0-9_-]+):(.*)$/.exec(line)
    if (k) {
      close()
      const value = k[2]!.trim()
      if (value === '' || value === '|' || value === '>') { key = k[1]!; continue }
      if (value.startsWith('[') && value.endsWith(']')) fields[k[1]!] = value.slice(1, -1).split(',').map(unquote).filter(Boolean)
      else fields[k[1]!] = unquote(value.replace(/\s+#.*$/, ''))
    } else if (key !== undefined) raw.push(line)
  }
  close()
  return { fields, blocks, body: text.slice(m[0].length) }
}

/** Metrics of a card's model-index (`- type: <metric>` followed by `value: <number>`), first of each name. */
export function modelIndexMetrics(block: string | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  if (!block) return out
  for (const mm of block.matchAll(/-\s+type:\s*("[^"\n]*"|'[^'\n]*'|[^\n]+?)\s*\n\s+value:\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$/gm)) {
    const k = unquote(mm[1]!).replace(/[^A-Za-z0-9_.-]+/g, '_')
    const v = Number(mm[2])
    if (k && Number.isFinite(v) && !(k in out)) out[k] = v
  }
  return out
}

/** An evaluation of a version as cards and `show` list it (from its record under evals/, spec/eval.md). */
export interface EvalSummary {
  /** The data's name (its file names) and the sha256 of its contents. */
  data: string
  data_sha256: string
  n: number
  /** The model file evaluated. */
  file: string
  metrics: Record<string, number>
  created: string
  by: string
  /** False when the record does not hold up against the manifest (then `problem` says why). */
  ok: boolean
  problem?: string
}

/** What a card shows beside the manifest's own facts. */
export interface CardExtras {
  evaluations?: EvalSummary[]
  /** Current stage names of this version. */
  stages?: string[]
  /**
   * For a card leaving the zoo (`export --format hf`): the Hugging Face Hub ids of the parents, which
   * replace the zoo's `name@vN` in `base_model` (the Hub takes only its own model ids there); empty
   * leaves base_model out. Parents stay listed in the body's Lineage section either way.
   */
  hubBaseModels?: string[]
}

function modelIndex(m: Manifest, evals: EvalSummary[]): string[] {
  const facts = metricFacts(m).filter((f) => f.final !== undefined)
  const good = evals.filter((e) => e.ok)
  if (!facts.length && !good.length) return []
  const pipeline = typeof m.card_text === 'string' ? parseFrontMatter(m.card_text).fields.pipeline_tag : undefined
  const task = typeof m.params.task === 'string' ? m.params.task : typeof pipeline === 'string' ? pipeline : 'other'
  const out = ['model-index:', `- name: ${yamlString(m.name)}`, '  results:']
  if (facts.length) {
    out.push('  - task:', `      type: ${yamlString(task)}`)
    if (m.dataset) out.push('    dataset:', `      name: ${yamlString(m.dataset)}`, `      type: ${yamlString(m.dataset)}`)
    // a trajectory's card stays small: the metric's display name (optional on the Hub) is left out
    out.push('    metrics:', ...facts.flatMap((f) => [`    - type: ${yamlString(f.key)}`, `      value: ${fmt(f.final!)}`, ...(m.checkpoints ? [] : [`      name: ${yamlString(`${f.key} (final)`)}`])]))
  }
  for (const e of good) {
    out.push('  - task:', `      type: ${yamlString(task)}`, '    dataset:', `      name: ${yamlString(e.data)}`, `      type: ${yamlString(e.data)}`, `      revision: ${yamlString(e.data_sha256)}`,
      '    metrics:', ...Object.entries(e.metrics).flatMap(([k, v]) => [`    - type: ${yamlString(k)}`, `      value: ${fmt(v)}`, `      name: ${yamlString(`${k} on ${e.data} (git zoo eval, ${e.created})`)}`]))
  }
  return out
}

/** Trajectories with more checkpoints than this list only the last one's files in the card. */
export const CARD_EPOCHS = 3

export function renderModelCard(m: Manifest, extras: CardExtras = {}): string {
  const fm: string[] = ['---']
  const bases = extras.hubBaseModels ?? m.parents.map((p) => `${p.name}@v${p.version}`)
  if (bases.length) {
    fm.push('base_model:', ...bases.map((b) => `- ${yamlString(b)}`))
    const rel = hfRelation(m) ?? (typeof m.params.hf_base_model_relation === 'string' ? m.params.hf_base_model_relation : undefined)
    if (rel) fm.push(`base_model_relation: ${rel}`)
  }
  const given = typeof m.card_text === 'string' ? splitCardText(m.card_text) : undefined
  if (m.dataset) fm.push('datasets:', `- ${yamlString(m.dataset)}`)
  const tags = ['git-zoo', ...(m.arch ? [m.arch] : []), ...new Set(m.files.map((f) => f.format).filter((f) => f !== 'unknown')),
    ...(m.checkpoints || m.files.some((f) => f.epoch !== undefined) ? ['trajectory'] : []), ...m.parents.map((p) => p.relation)]
  fm.push('tags:', ...[...new Set([...tags, ...(given?.tags ?? [])])].map((t) => `- ${yamlString(t)}`))
  fm.push(`license: ${yamlString(license(m))}`)
  fm.push(...modelIndex(m, extras.evaluations ?? []))
  if (given) fm.push(...given.frontMatter)
  fm.push('---', '')

  // a given card with its own title keeps it
  const b: string[] = given?.body.startsWith('# ') ? [] : [`# ${m.name} v${m.version}`, '']
  if (given?.body) b.push(given.body, '')
  if (m.message) b.push(m.message, '')
  if (given?.body) b.push('## Facts recorded by git-zoo', '')
  b.push('| | |', '|---|---|', ...(m.checkpoints ? [] : [`| model | \`${m.name}@v${m.version}\` |`]), `| seal | \`${m.seal}\` |`, `| promoted by | ${m.promoter} |`, `| created | ${m.created} |`)
  if (m.code) b.push(`| code | ${m.code.repo ? `${m.code.repo} ` : ''}\`${m.code.commit.slice(0, 12)}\`${m.code.dirty ? ' (dirty)' : ''} |`)
  b.push('')
  b.push('## Generating factors', '', '| factor | value |', '|---|---|')
  if (m.seed !== undefined) b.push(`| seed | ${m.seed} |`)
  if (m.dataset) b.push(`| dataset | ${m.dataset} |`)
  if (m.arch) b.push(`| arch | ${m.arch} |`)
  const paramText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v)).replace(/\|/g, '\\|')
  // a trajectory's card (one per model of a population) lists its params on one row
  if (m.checkpoints && Object.keys(m.params).length) b.push(`| params | ${Object.entries(m.params).map(([k, v]) => `${k}=${paramText(v)}`).join(', ')} |`)
  else for (const [k, v] of Object.entries(m.params)) b.push(`| params.${k} | ${paramText(v)} |`)
  if (m.config) b.push(`| config | [${m.config.path}](${m.config.path}) (sha256 \`${m.config.sha256.slice(0, 16)}…\`) |`)
  b.push('')
  const all = metricFacts(m)
  if (all.length) {
    b.push('## Metrics', '', '| metric | final | best | at epoch |', '|---|---|---|---|',
      ...all.map((f) => `| ${f.key} | ${f.final === undefined ? '' : fmt(f.final)} | ${f.best === undefined ? '' : `${fmt(f.best)} (${f.goal})`} | ${f.bestEpoch ?? ''} |`), '')
  }
  const evals = extras.evaluations ?? []
  if (evals.length) {
    b.push('## Evaluations', '', '| data | sha256 | samples | file | metrics | when | by |', '|---|---|---|---|---|---|---|',
      ...evals.map((e) => `| ${e.data} | \`${e.data_sha256.slice(0, 16)}…\` | ${e.n} | ${e.file} | ${Object.entries(e.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}${e.ok ? '' : ` (does not hold up: ${e.problem ?? 'invalid'})`} | ${e.created} | ${e.by} |`), '')
  }
  const c = m.checkpoints ? undefined : curve(m) // a trajectory's curve: `git zoo show` plots it
  if (c) b.push(`Curve of ${c.key} over epochs ${c.epochs[0]}-${c.epochs[c.epochs.length - 1]}: \`${sparkline(c.values)}\` (${fmt(c.values[0]!)} → ${fmt(c.values[c.values.length - 1]!)})`, '')
  if (m.history?.length && !m.checkpoints) {
    const keys = [...new Set(m.history.flatMap((h) => Object.keys(h)))]
    b.push('<details><summary>History: ' + `${m.history.length} records</summary>`, '', `| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`,
      ...m.history.map((h) => `| ${keys.map((k) => (h[k] === undefined ? '' : fmt(h[k]!))).join(' | ')} |`), '', '</details>', '')
  }
  const cps = checkpointSummary(m)
  const totals = fileTotals(m)
  if (m.checkpoints) {
    // a trajectory's card stays small: its checkpoint files and history are in the checkpoint node
    // (spec/format.md); `git zoo show` lists them, the manifest holds every other file's digest
    const own = m.files.filter((f) => f.epoch === undefined)
    b.push('## Files', '', `${totals.count} files, ${human(totals.bytes)}: ${cps}${own.length ? `, ${own.map((f) => f.path).join(', ')}` : ''}; `
      + `every file's size and sha256: \`git zoo show\` with \`--files\`.`, '')
  } else {
    // a long trajectory lists its last checkpoint's files only: the manifest holds every file's digest,
    // and a card per model repeating thousands of them would double what a population costs in git
    const epochs = [...new Set(m.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch!))].sort((x, y) => x - y)
    const lastEpoch = epochs[epochs.length - 1]
    const listed = epochs.length > CARD_EPOCHS ? m.files.filter((f) => f.epoch === undefined || f.epoch === lastEpoch) : m.files
    b.push('## Files', '', `${m.files.length} file${m.files.length === 1 ? '' : 's'}, ${human(m.files.reduce((a, f) => a + f.size, 0))}${cps ? `; ${cps}` : ''}.`, '',
      '| file | epoch | format | size | sha256 |', '|---|---|---|---|---|',
      ...listed.map((f) => `| ${f.path} | ${f.epoch ?? ''} | ${f.format}${f.role ? ` (${f.role})` : ''}${typeof f.malformed === 'string' ? ' (opaque, malformed)' : ''} | ${human(f.size)} | \`${f.sha256}\` |`), '')
    if (listed.length < m.files.length) b.push(`The ${m.files.length - listed.length} files of epochs ${epochs[0]}-${epochs[epochs.length - 2]} are listed with their sizes and sha256 in [manifest.json](manifest.json).`, '')
  }
  b.push('## Lineage', '')
  if (m.parents.length) b.push(...m.parents.map((p) => `- ${p.relation} of \`${p.name}@v${p.version}\` (seal \`${p.seal}\`)`), '')
  else b.push('No parents: trained from scratch or imported as a root.', '')
  if (!m.checkpoints) b.push(`Ancestors and descendants: \`git zoo lineage ${m.name}@v${m.version}\``, '')
  b.push('## Get it', '', '```', `git zoo get ${m.name}@v${m.version}`)
  const last = checkpointFacts(m)?.last
  if (last !== undefined) b.push(`git zoo get ${m.name}@v${m.version} --checkpoint ${last}`)
  b.push('```', '')
  return fm.join('\n') + '\n' + b.join('\n')
}

/**
 * The card committed beside a version's manifest, or undefined when none is. A member of an imported
 * population (its manifest names the `population`, spec/import.md) has none: a population is tens of
 * thousands of generated models whose cards would repeat their manifests, and a third file per model
 * is what a clone of it spends its time checking out. Its card is rendered when asked (`git zoo show
 * --card`, `export --format hf`, the web app), from the same manifest, so nothing is lost.
 */
export function committedCard(m: Manifest): string | undefined {
  return typeof m.population === 'string' ? undefined : renderModelCard(m)
}

export interface TerminalCardOptions {
  /** Children found in the zoo (the README cannot know them). */
  children?: Array<{ name: string; version: number; relation: string }>
  sealOk?: boolean
  width?: number
  /** The version's retirement record (RETIRED.json), when it is retired. */
  retired?: { reason: string; retired_by: string; retired: string } | null
  /** Its evaluation records, oldest first. */
  evaluations?: EvalSummary[]
  /** The stages that name it now. */
  stages?: string[]
  /** List every file with its whole sha256 (`show --files`), not the first and last three. */
  allFiles?: boolean
}

/** The card for `git zoo show`: the README's facts, laid out for a terminal, with a small plot. */
export function renderTerminalCard(m: Manifest, o: TerminalCardOptions = {}): string {
  const out: string[] = []
  const width = Math.min(24, Math.max(12, ...Object.keys(m.params).map((k) => k.length)))
  const kv = (k: string, v: string): void => { out.push(`  ${k.padEnd(width)} ${v}`) }
  out.push(`${m.name}@v${m.version}${m.message ? `  ${m.message.split('\n')[0]}` : ''}`, '')
  kv('seal', `${m.seal}${o.sealOk === undefined ? '' : o.sealOk ? '  (verified)' : '  (MISMATCH: the manifest was changed after sealing)'}`)
  kv('promoted', `${m.created} by ${m.promoter}`)
  kv('license', license(m))
  if (o.retired) kv('RETIRED', `${o.retired.retired} by ${o.retired.retired_by}: ${o.retired.reason}`)
  if (o.stages?.length) kv('stages', o.stages.map((s) => `${m.name}@${s}`).join(', '))
  if (m.code) kv('code', `${m.code.repo ? `${m.code.repo} ` : ''}${m.code.commit.slice(0, 12)}${m.code.dirty ? ' (dirty)' : ''}`)
  out.push('', 'factors')
  if (m.seed !== undefined) kv('seed', String(m.seed))
  if (m.dataset) kv('dataset', m.dataset)
  if (m.arch) kv('arch', m.arch)
  for (const [k, v] of Object.entries(m.params)) kv(k, typeof v === 'string' ? v : JSON.stringify(v))
  const facts = metricFacts(m)
  if (facts.length) {
    const mw = Math.max(16, ...facts.map((f) => f.key.length))
    out.push('', `${'metrics'.padEnd(mw + 3)}${'final'.padStart(12)}${'best'.padStart(12)}  epoch`)
    for (const f of facts) {
      out.push(`  ${f.key.padEnd(mw)} ${(f.final === undefined ? '' : fmt(f.final)).padStart(12)}${(f.best === undefined ? '' : fmt(f.best)).padStart(12)}  ${f.bestEpoch ?? ''}`)
    }
  }
  if (o.evaluations?.length) {
    out.push('', 'evaluations')
    for (const e of o.evaluations) {
      out.push(`  ${e.data}  sha256 ${e.data_sha256.slice(0, 16)}…  ${e.n} samples  ${e.file}`)
      out.push(`    ${Object.entries(e.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join('  ')}`)
      out.push(`    ${e.created} by ${e.by}${e.ok ? '' : `  (DOES NOT HOLD UP: ${e.problem ?? 'invalid record'})`}`)
    }
  }
  const c = curve(m)
  if (c) out.push('', ...plot(c, Math.min(o.width ?? 80, 100)))
  out.push('', 'files')
  const cps = checkpointSummary(m)
  const totals = fileTotals(m)
  kv('count', `${totals.count}, ${human(totals.bytes)}${cps ? `; ${cps}` : ''}`)
  const all = o.allFiles ? m.files : undefined
  const shown = all ?? (m.files.length > 8 ? [...m.files.slice(0, 3), undefined, ...m.files.slice(-3)] : m.files)
  for (const f of shown) out.push(f ? `  ${f.path}  ${human(f.size)}  ${f.format}  sha256 ${all ? f.sha256 : `${f.sha256.slice(0, 16)}…`}${typeof f.malformed === 'string' ? `  (opaque: ${f.malformed})` : ''}` : `  … ${m.files.length - 6} more`)
  if (m.files.length < totals.count) out.push(`  … ${totals.count - m.files.length} checkpoint files in checkpoint node ${m.checkpoints!.node}, not in this store (\`git zoo fetch\`)`)
  out.push('', 'lineage')
  if (m.parents.length === 0) out.push('  no parents')
  for (const p of m.parents) out.push(`  ${p.relation} of ${p.name}@v${p.version}`)
  for (const ch of o.children ?? []) out.push(`  ${ch.relation} -> ${ch.name}@v${ch.version}`)
  out.push('', 'get it')
  out.push(`  git zoo get ${m.name}@v${m.version}`)
  const last = checkpointFacts(m)?.last
  if (last !== undefined) out.push(`  git zoo get ${m.name}@v${m.version} --checkpoint ${last}`)
  return out.join('\n') + '\n'
}

/** A small ASCII plot (8 rows) of a curve. */
export function plot(c: { key: string; epochs: number[]; values: number[] }, width = 80): string[] {
  const rows = 8
  const cols = Math.max(10, Math.min(width - 14, c.values.length * 2, 64))
  const lo = Math.min(...c.values), hi = Math.max(...c.values)
  const grid = Array.from({ length: rows }, () => Array<string>(cols).fill(' '))
  for (let x = 0; x < cols; x++) {
    const t = x * (c.values.length - 1) / (cols - 1)
    const i = Math.floor(t)
    const v = i + 1 < c.values.length ? c.values[i]! + (c.values[i + 1]! - c.values[i]!) * (t - i) : c.values[i]!
    const y = hi === lo ? Math.floor(rows / 2) : Math.round((v - lo) / (hi - lo) * (rows - 1))
    grid[rows - 1 - y]![x] = '*'
  }
  const label = (v: number): string => fmt(v).slice(0, 10).padStart(10)
  const lines = [`${c.key} over epochs ${c.epochs[0]}-${c.epochs[c.epochs.length - 1]}`]
  grid.forEach((r, i) => lines.push(`${i === 0 ? label(hi) : i === rows - 1 ? label(lo) : ' '.repeat(10)} |${r.join('')}`))
  lines.push(`${' '.repeat(10)} +${'-'.repeat(cols)}`)
  lines.push(`${' '.repeat(11)}${String(c.epochs[0]).padEnd(cols - String(c.epochs[c.epochs.length - 1]).length)}${c.epochs[c.epochs.length - 1]}`)
  lines.push(`${' '.repeat(11)}${sparkline(c.values, cols)}`)
  return lines
}
