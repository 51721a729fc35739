/**
 * A small strict argv parser: every command declares its flags; anything else is a usage error.
 */
import { UsageError } from '../errors.js'

export interface FlagSpec {
  /** 'bool' flags take no value; 'string' takes one; 'list' may repeat. */
  type: 'bool' | 'string' | 'list'
  short?: string
  /** Shown in help; the value's placeholder. */
  value?: string
}

export type FlagSpecs = Record<string, FlagSpec>

/**
 * Flags every command takes (main.ts adds them to the command's own): `-q/--quiet` silences the
 * one-line summary a command prints on success (warnings and errors are still printed).
 */
export const GLOBAL_FLAGS: FlagSpecs = { quiet: { type: 'bool', short: 'q' } }

/** Edit distance (insert, delete, substitute, swap two neighbours) between two short words. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The candidate nearest to `word` (a typo of it: at most 1 edit for short words, 2 for longer ones,
 * or `word` is its start), or undefined when nothing is close or `word` is one letter. Ties go to
 * the first candidate.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  if (w.length < 2) return undefined
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase())
    if (d < bestD) { best = c; bestD = d }
  }
  if (best !== undefined && bestD <= (w.length <= 4 ? 1 : 2)) return best
  return candidates.find((c) => c.startsWith(w))
}

function unknownFlag(flag: string, specs: FlagSpecs, command: string): UsageError {
  const near = flag.startsWith('--') ? nearest(flag.slice(2), Object.keys(specs)) : undefined
  const help = `\`git zoo ${command} --help\``
  return new UsageError(`unknown flag ${flag} for \`git zoo ${command}\`; ${near ? `did you mean --${near}? (${help} lists the flags)` : `see ${help}`}`,
    'E_USAGE', { flag, ...(near ? { suggestion: `--${near}` } : {}) })
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>
  positional: string[]
}

export function parseArgs(argv: string[], specs: FlagSpecs, command: string): Parsed {
  const flags: Parsed['flags'] = {}
  const positional: string[] = []
  const byShort = new Map<string, string>()
  for (const [name, spec] of Object.entries(specs)) if (spec.short) byShort.set(spec.short, name)
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') { positional.push(...argv.slice(i + 1)); break }
    let name: string | undefined
    let inline: string | undefined
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      inline = eq === -1 ? undefined : arg.slice(eq + 1)
    } else if (arg.length > 1 && arg.startsWith('-') && !/^-\d/.test(arg)) {
      name = byShort.get(arg.slice(1, 2))
      if (!name) throw unknownFlag(arg, specs, command)
      if (arg.length > 2) inline = arg.slice(2)
    } else {
      positional.push(arg)
      continue
    }
    const spec = specs[name]
    if (!spec) throw unknownFlag(`--${name}`, specs, command)
    if (spec.type === 'bool') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`, 'E_USAGE', { flag: `--${name}` })
      flags[name] = true
      continue
    }
    let value = inline
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value (${spec.value ?? 'value'})`, 'E_USAGE', { flag: `--${name}` })
      value = argv[++i]!
    }
    if (spec.type === 'list') {
      const prev = flags[name]
      flags[name] = Array.isArray(prev) ? [...prev, value] : [value]
    } else {
      if (flags[name] !== undefined) throw new UsageError(`--${name} given twice`, 'E_USAGE', { flag: `--${name}` })
      flags[name] = value
    }
  }
  return { flags, positional }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name]
  return typeof v === 'string' ? v : undefined
}
export function bool(p: Parsed, name: string): boolean { return p.flags[name] === true }
export function list(p: Parsed, name: string): string[] {
  const v = p.flags[name]
  return Array.isArray(v) ? v : []
}
export function int(p: Parsed, name: string): number | undefined {
  const v = str(p, name)
  if (v === undefined) return undefined
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(v)}`, 'E_USAGE', { flag: `--${name}` })
  const n = Number(v)
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} is out of range: ${v}`, 'E_USAGE', { flag: `--${name}` })
  return n
}
