/**
 * The model card written beside each manifest (`README.md`): front matter a Hugging Face user knows
 * (base_model, base_model_relation, datasets, tags, license, model-index) and a readable body.
 * It is derived from the manifest; the manifest stays the sealed source of truth.
 */
import type { Manifest } from '../manifest/manifest.js'

export const CARD_FILE = 'README.md'

const HF_RELATION: Record<string, string> = {
  'fine-tune': 'finetune', finetune: 'finetune', adapter: 'adapter', merge: 'merge', soup: 'merge',
  quantized: 'quantized', sparsified: 'finetune', pruned: 'finetune', distilled: 'finetune', continued: 'finetune', derived: 'finetune',
}

function yamlString(s: string): string { return JSON.stringify(s) }

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0; let v = n
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`
}

function fmt(v: number): string { return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '') }

export function renderModelCard(m: Manifest): string {
  const fm: string[] = ['---']
  if (m.parents.length) {
    fm.push('base_model:', ...m.parents.map((p) => `  - ${yamlString(`${p.name}@v${p.version}`)}`))
    fm.push(`base_model_relation: ${HF_RELATION[m.parents[0]!.relation] ?? 'finetune'}`)
  }
  if (m.dataset) fm.push('datasets:', `  - ${yamlString(m.dataset)}`)
  const tags = ['git-zoo', ...(m.arch ? [m.arch] : []), ...[...new Set(m.files.map((f) => f.format))].filter((f) => f !== 'unknown')]
  fm.push('tags:', ...tags.map((t) => `  - ${yamlString(t)}`))
  const license = typeof m.params.license === 'string' ? m.params.license : 'other'
  fm.push(`license: ${yamlString(license)}`)
  const metrics = Object.entries(m.metrics)
  if (metrics.length) {
    fm.push('model-index:', `  - name: ${yamlString(m.name)}`, '    results:', '      - task:', '          type: other')
    if (m.dataset) fm.push('        dataset:', `          name: ${yamlString(m.dataset)}`, `          type: ${yamlString(m.dataset)}`)
    fm.push('        metrics:', ...metrics.flatMap(([k, v]) => [`          - type: ${yamlString(k)}`, `            value: ${fmt(v)}`]))
  }
  fm.push('---', '')
  const body: string[] = [`# ${m.name} v${m.version}`, '']
  if (m.message) body.push(m.message, '')
  body.push(`Seal: \`${m.seal}\`  `, `Promoted by ${m.promoter} on ${m.created}` + (m.code ? ` from code ${m.code.commit.slice(0, 12)}${m.code.dirty ? ' (dirty)' : ''}` : ''), '')
  body.push('## Generating factors', '', '| factor | value |', '|---|---|')
  if (m.seed !== undefined) body.push(`| seed | ${m.seed} |`)
  if (m.dataset) body.push(`| dataset | ${m.dataset} |`)
  if (m.arch) body.push(`| arch | ${m.arch} |`)
  for (const [k, v] of Object.entries(m.params)) body.push(`| params.${k} | ${typeof v === 'string' ? v : JSON.stringify(v)} |`)
  body.push('')
  if (metrics.length) {
    body.push('## Metrics', '', '| metric | value |', '|---|---|', ...metrics.map(([k, v]) => `| ${k} | ${fmt(v)} |`), '')
  }
  if (m.history?.length) {
    const keys = [...new Set(m.history.flatMap((h) => Object.keys(h)))]
    body.push('## History', '', `| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`,
      ...m.history.map((h) => `| ${keys.map((k) => (h[k] === undefined ? '' : fmt(h[k]!))).join(' | ')} |`), '')
  }
  body.push('## Files', '', '| file | size | sha256 |', '|---|---|---|',
    ...m.files.map((f) => `| ${f.path} | ${human(f.size)} | \`${f.sha256}\` |`), '')
  if (m.parents.length) body.push('## Lineage', '', ...m.parents.map((p) => `- ${p.relation} of ${p.name}@v${p.version} (\`${p.seal}\`)`), '')
  body.push('## Get it', '', '```', `git zoo get ${m.name}@v${m.version}`, '```', '')
  return fm.join('\n') + '\n' + body.join('\n')
}
