/**
 * The stages naming each model version, for `ls` and `find` (spec/catalog.md, "Stages and
 * evaluations"), without starting git on the warm path. Stage tags are immutable and append-only
 * (spec/stages.md), so what the stages are is a function of the stage refs alone: their names and
 * object ids, read here in-process from the loose refs under `refs/tags/zoo-stage/` and from
 * `packed-refs`. The answer of the last `git for-each-ref` (src/git/stages.ts) is kept in
 * `stages.json` beside the catalog cache with that state, and used while the state is unchanged.
 * A repository with no stage tags needs no git at all; one using the reftable format is always asked.
 */
import { readdirSync, readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import type { GitPlaces } from './gitstate.js'

const PREFIX = 'refs/tags/zoo-stage/'
const FORMAT = 1

function readText(path: string): string | undefined {
  try { return readFileSync(path, 'utf8') } catch { return undefined }
}

/**
 * `<ref> <object id>` lines of every stage ref, sorted: loose refs override packed ones. Undefined
 * when the refs cannot be read as files (a reftable repository).
 */
export function stageRefState(p: GitPlaces): string | undefined {
  try { readdirSync(join(p.commonDir, 'reftable')); return undefined } catch { /* files backend */ }
  const refs = new Map<string, string>()
  const packed = readText(join(p.commonDir, 'packed-refs'))
  if (packed !== undefined && packed.includes(` ${PREFIX}`)) {
    for (const line of packed.split('\n')) {
      const sp = line.indexOf(' ')
      if (sp > 0 && line.startsWith(PREFIX, sp + 1)) refs.set(line.slice(sp + 1), line.slice(0, sp))
    }
  }
  const walk = (rel: string): void => {
    let entries
    try { entries = readdirSync(join(p.commonDir, rel), { withFileTypes: true }) } catch { return }
    for (const e of entries) {
      const r = `${rel}/${e.name}`
      if (e.isDirectory()) walk(r)
      else if (!e.name.endsWith('.lock')) { const oid = readText(join(p.commonDir, r))?.trim(); if (oid) refs.set(r, oid) }
    }
  }
  walk(PREFIX.slice(0, -1))
  return [...refs].map(([r, o]) => `${r} ${o}`).sort().join('\n')
}

type Read = (root: string, env: NodeJS.ProcessEnv) => Promise<Array<{ name: string; stage: string; version?: number }>>

/** The stages naming each version, by `name@vN` (sorted names); `cacheDir` holds stages.json. */
export async function stagesByVersion(p: GitPlaces, env: NodeJS.ProcessEnv, cacheDir: string, read?: Read): Promise<Map<string, string[]>> {
  const state = stageRefState(p)
  if (state === '') return new Map()
  const file = join(cacheDir, 'stages.json')
  if (state !== undefined) {
    try {
      const c = JSON.parse(readFileSync(file, 'utf8')) as { format: number; state: string; stages: Array<[string, string[]]> }
      if (c.format === FORMAT && c.state === state) return new Map(c.stages)
    } catch { /* no cache yet, or a damaged one: ask git */ }
  }
  const stages = await (read ?? (await import('../git/stages.js')).readStages)(p.root, env)
  const map = new Map<string, string[]>()
  for (const s of stages) {
    if (s.version === undefined) continue
    const key = `${s.name}@v${s.version}`
    map.set(key, [...(map.get(key) ?? []), s.stage].sort())
  }
  // the refs may have moved while git read them: keep the answer only if they did not
  if (state !== undefined && stageRefState(p) === state) {
    try {
      mkdirSync(dirname(file), { recursive: true })
      const tmp = `${file}.${Math.random().toString(36).slice(2)}.tmp`
      writeFileSync(tmp, JSON.stringify({ format: FORMAT, state, stages: [...map] }))
      renameSync(tmp, file)
    } catch { /* a read-only checkout: answer without caching */ }
  }
  return map
}
