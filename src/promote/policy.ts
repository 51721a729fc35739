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
  try { return JSON.parse(text) as ZooSchema } catch (err) {
    throw new ZooError(`.zoo/schema.json is not valid JSON (${(err as Error).message}); fix it or restore it with \`git checkout -- .zoo/schema.json\``, 'E_CONFIG', {}, { cause: err })
  }
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

export async function validateAgainstSchema(repo: Repo, body: ManifestBody): Promise<void> {
  const problems = schemaProblems(body, await readSchema(repo))
  if (problems.length) {
    throw new CheckError(`model ${body.name} does not meet this zoo's metadata schema:\n  ${problems.join('\n  ')}\npass the missing values (for example --param lr=3e-4, --metrics metrics.json, --seed 1)`, 'E_SCHEMA', { problems })
  }
}
