/**
 * The retirement record, `models/<name>/v<N>/RETIRED.json` (spec/seal.md, "Retirement"): its
 * format, kept apart from the act of retiring (src/promote/retire.ts) so that reading it (Repo,
 * the catalog) needs nothing above the manifest layer.
 */
import { FormatError } from '../errors.js'

export const RETIRED_FILE = 'RETIRED.json'

export interface Retirement {
  zoo: 1
  name: string
  version: number
  /** The seal of the version retired: binds the record to exactly that manifest. */
  seal: string
  reason: string
  /** `Name <email>` of who retired it (git's user.name / user.email). */
  retired_by: string
  /** ISO 8601 time. */
  retired: string
}

const KEYS = ['zoo', 'name', 'version', 'seal', 'reason', 'retired_by', 'retired'] as const

/** Parse and check a RETIRED.json; throws FormatError naming what is wrong. */
export function parseRetirement(text: string, where = RETIRED_FILE): Retirement {
  const bad = (why: string): never => { throw new FormatError(`${where}: ${why}`, 'E_RETIREMENT', { where }) }
  let v: unknown
  try { v = JSON.parse(text) } catch (err) {
    throw new FormatError(`${where} is not valid JSON: ${(err as Error).message}`, 'E_RETIREMENT', { where }, { cause: err })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not a JSON object')
  const r = v as Record<string, unknown>
  for (const k of Object.keys(r)) if (!(KEYS as readonly string[]).includes(k)) bad(`unknown key ${JSON.stringify(k)}`)
  if (r.zoo !== 1) bad('zoo is not 1')
  if (typeof r.name !== 'string' || !Number.isSafeInteger(r.version) || typeof r.seal !== 'string') bad('name, version and seal are required')
  if (typeof r.reason !== 'string' || r.reason.trim() === '') bad('reason is empty')
  if (typeof r.retired_by !== 'string' || typeof r.retired !== 'string') bad('retired_by and retired are required')
  return r as unknown as Retirement
}

export function serializeRetirement(r: Retirement): string {
  const o: Record<string, unknown> = {}
  for (const k of KEYS) o[k] = r[k]
  return JSON.stringify(o, null, 2) + '\n'
}
