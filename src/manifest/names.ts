/** Model names, model references (`name@vN` or a seal CID) and paths inside a model folder. */
import { UsageError, FormatError } from '../errors.js'

/** The folder of model versions: `models/<name>/v<N>/` (re-exported by manifest.ts). */
export const MODELS_DIR = 'models'
/** A version's evaluation records: `models/<name>/v<N>/evals/` (re-exported by evals/record.ts). */
export const EVALS_DIR = 'evals'

const SEGMENT = /^[a-z0-9][a-z0-9._-]*$/

/** A model name: lower-case segments of [a-z0-9._-] joined by `/`; no `..`, no `vN` segment. */
export function checkModelName(name: string): string {
  const why = modelNameProblem(name)
  if (why) throw new UsageError(`invalid model name ${JSON.stringify(name)}: ${why}`, 'E_BAD_NAME', { name })
  return name
}

export function modelNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty'
  if (name.length > 200) return 'it is longer than 200 characters'
  for (const seg of name.split('/')) {
    if (seg === '') return 'it has an empty segment (leading, trailing or double `/`)'
    if (seg === '.' || seg === '..' || seg.includes('..')) return 'segments may not contain `..`'
    if (!SEGMENT.test(seg)) return `segment ${JSON.stringify(seg)} must be lower-case letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or digit`
    if (/^v\d+$/.test(seg)) return `segment ${JSON.stringify(seg)} looks like a version; versions are written name@vN`
  }
  return undefined
}

export interface ModelRef { name: string; version?: number }

/** Parse `name`, `name@vN` (N >= 1). */
export function parseModelRef(ref: string): ModelRef {
  const at = ref.lastIndexOf('@')
  if (at === -1) return { name: checkModelName(ref) }
  const v = ref.slice(at + 1)
  if (!/^v[1-9]\d*$/.test(v)) throw new UsageError(`invalid version in ${JSON.stringify(ref)}: write name@vN with N >= 1 (a stage, name@prod, works where a command resolves models)`, 'E_BAD_NAME', { ref })
  return { name: checkModelName(ref.slice(0, at)), version: Number(v.slice(1)) }
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i

/** A relative path inside a model folder: `/`-separated, no `..`, `.git`, absolute, NUL or backslash. */
export function checkRelPath(path: string): string {
  const fail = (why: string): never => { throw new FormatError(`unsafe file path ${JSON.stringify(path)}: ${why}`, 'E_BAD_PATH', { path }) }
  if (path.length === 0 || path.length > 1024) fail('empty or too long')
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) fail('absolute')
  if (/[\x00-\x1f\\]/.test(path)) fail('control character or backslash')
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') fail('empty, `.` or `..` segment')
    if (seg.toLowerCase().replace(/[. ]+$/, '') === '.git') fail('names .git')
    if (seg.endsWith(' ') || seg.endsWith('.')) fail('a segment ends in a space or dot')
    if (WINDOWS_RESERVED.test(seg)) fail('reserved device name')
  }
  return path
}
