/**
 * The metadata schema of `.zoo/schema.json` (spec/schema.md): extra fields a zoo requires of its
 * manifests. (The signing policy of `.zoo/config.json` is checked by src/zoo/commit.ts.)
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import type { ManifestBody } from '../manifest/manifest.js'
import { CheckError, ZooError } from '../errors.js'

export interface FieldRule { type?: 'number' | 'string' | 'integer' | 'boolean'; minimum?: number; maximum?: number; enum?: unknown[]; pattern?: string }
export interface ZooSchema { required?: string[]; properties?: Record<string, FieldRule> }

export async function readSchema(repo: Repo): Promise<ZooSchema> {
  let text: string
  try { text = await readFile(join(repo.root, '.zoo', 'schema.json'), 'utf8') } catch { return {} }
  return parseSchema(text)
}

const SCHEMA_FILE = '.zoo/schema.json'
const RULE_TYPES = ['number', 'integer', 'string', 'boolean']

/**
 * The schema in `text`, checked so that applying it cannot fail: valid JSON, `required` a list of
 * field paths, `properties` an object of rule objects whose `pattern` compiles and whose bounds are
 * numbers. Throws E_CONFIG naming the field and what is wrong with it.
 */
export function parseSchema(text: string): ZooSchema {
  const fail = (what: string, cause?: unknown): never => {
    throw new ZooError(`${SCHEMA_FILE}: ${what}; fix it (spec/schema.md describes the format) or restore it with \`git checkout -- ${SCHEMA_FILE}\``,
      'E_CONFIG', { file: SCHEMA_FILE }, cause === undefined ? undefined : { cause })
  }
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { fail(`not valid JSON (${(err as Error).message})`, err) }
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail('not a JSON object')
  const s = v as Record<string, unknown>
  if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((f) => typeof f !== 'string'))) {
    fail('"required" must be a list of field paths such as ["seed", "metrics.test_acc"]')
  }
  if (s.properties !== undefined && (!s.properties || typeof s.properties !== 'object' || Array.isArray(s.properties))) {
    fail('"properties" must be an object of rules, e.g. { "seed": { "type": "integer" } }')
  }
  for (const [field, rule] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) {
    if (!rule || typeof rule !== 'object' || Array.isArray(rule)) fail(`the rule for ${field} is not an object`)
    const r = rule as Record<string, unknown>
    if (r.type !== undefined && !RULE_TYPES.includes(r.type as string)) fail(`the rule for ${field} has type ${JSON.stringify(r.type)}; use one of ${RULE_TYPES.join(', ')}`)
    for (const k of ['minimum', 'maximum']) {
      if (r[k] !== undefined && typeof r[k] !== 'number') fail(`the ${k} for ${field} must be a number, not ${JSON.stringify(r[k])}`)
    }
    if (r.enum !== undefined && !Array.isArray(r.enum)) fail(`the enum for ${field} must be a list of allowed values`)
    if (r.pattern !== undefined) {
      if (typeof r.pattern !== 'string') fail(`the pattern for ${field} must be a string`)
      try { new RegExp(r.pattern as string) } catch (err) {
        fail(`the pattern for ${field} is not a valid regular expression (${(err as Error).message})`, err)
      }
    }
  }
  return s as ZooSchema
}

function lookup(body: Record<string, unknown>, path: string): unknown {
  let v: unknown = body
  for (const seg of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[seg]
  }
  return v
}

/** Problems of a manifest body against a schema; empty when it conforms. */
export function schemaProblems(body: Record<string, unknown>, schema: ZooSchema): string[] {
  const problems: string[] = []
  for (const field of schema.required ?? []) {
    if (lookup(body, field) === undefined) problems.push(`${field} is required by .zoo/schema.json`)
  }
  for (const [field, rule] of Object.entries(schema.properties ?? {})) {
    const v = lookup(body, field)
    if (v === undefined) continue
    if (rule.type === 'integer' ? !Number.isInteger(v) : rule.type && typeof v !== rule.type) problems.push(`${field} must be ${rule.type === 'integer' ? 'an integer' : `a ${rule.type}`}`)
    if (typeof v === 'number' && rule.minimum !== undefined && v < rule.minimum) problems.push(`${field} must be >= ${rule.minimum}`)
    if (typeof v === 'number' && rule.maximum !== undefined && v > rule.maximum) problems.push(`${field} must be <= ${rule.maximum}`)
    if (rule.enum && !rule.enum.includes(v)) problems.push(`${field} must be one of ${JSON.stringify(rule.enum)}`)
    if (rule.pattern && typeof v === 'string' && !new RegExp(rule.pattern).test(v)) problems.push(`${field} must match ${rule.pattern}`)
  }
  return problems
}

export async function validateAgainstSchema(repo: Repo, body: ManifestBody, schema?: ZooSchema): Promise<void> {
  const problems = schemaProblems(body, schema ?? await readSchema(repo))
  if (problems.length) {
    throw new CheckError(`model ${body.name} does not meet this zoo's metadata schema:\n  ${problems.join('\n  ')}\npass the missing values (for example --param lr=3e-4, --metrics metrics.json, --seed 1)`, 'E_SCHEMA', { problems })
  }
}
