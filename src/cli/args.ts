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
      if (!name) throw new UsageError(`unknown flag ${arg} for \`git zoo ${command}\`; see \`git zoo ${command} --help\``, 'E_USAGE', { flag: arg })
      if (arg.length > 2) inline = arg.slice(2)
    } else {
      positional.push(arg)
      continue
    }
    const spec = specs[name]
    if (!spec) throw new UsageError(`unknown flag --${name} for \`git zoo ${command}\`; see \`git zoo ${command} --help\``, 'E_USAGE', { flag: `--${name}` })
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
