/**
 * Errors as a contract: spec/errors.md documents every error code with the exit status the CLI
 * gives it. This test keeps the document, the code -> exit table (ERROR_CODES in src/errors.ts) and
 * the throw sites in src/ in step:
 *   - every code in the table has exactly one row in spec/errors.md, with the same exit status;
 *   - no row names a code that is gone;
 *   - every 'E_...' string in src/ is a code of the table (comparisons and pass-through included);
 *   - every `new <Class>(..., 'E_...')` in src/ uses a code whose exit status is the one its class
 *     stands for (UsageError 2, CheckError 1, FormatError 3), read from the source with the
 *     TypeScript parser, so a loosened type cannot let a class and its code disagree.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { ERROR_CODES, CheckError, CorruptObjectError, FormatError, NotFoundError, UnknownModelError, UsageError, ZooError } from '../src/errors.js'
import { ROOT } from './cli.js'

interface Row { code: string; exit: number; meaning: string; fix: string; line: number }

async function specRows(): Promise<Row[]> {
  const text = await readFile(join(ROOT, 'spec', 'errors.md'), 'utf8')
  const rows: Row[] = []
  text.split('\n').forEach((l, i) => {
    const m = /^\|\s*`?(E_[A-Z0-9_]+)`?\s*\|\s*(\d+)\s*\|(.*)\|(.*)\|\s*$/.exec(l)
    if (m) rows.push({ code: m[1]!, exit: Number(m[2]), meaning: m[3]!.trim(), fix: m[4]!.trim(), line: i + 1 })
  })
  return rows
}

async function sourceFiles(dir = join(ROOT, 'src')): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await sourceFiles(p))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out.sort()
}

/** The exit status each error class stands for; ZooError itself takes any code. */
const CLASS_EXIT: Record<string, number> = { UsageError: 2, UnknownModelError: 2, CheckError: 1, CorruptObjectError: 1, NotFoundError: 1, FormatError: 3 }

interface Site { cls: string; code: string; where: string }

/** `new X(..., 'E_...')` and `super(..., 'E_...')` in a file, with codes held in `const X = 'E_...'` resolved. */
function throwSites(file: string, text: string): Site[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const consts = new Map<string, string>()
  const classOf = new Map<ts.Node, string>()
  const sites: Site[] = []
  const collect = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && n.initializer && ts.isStringLiteral(n.initializer) && /^E_/.test(n.initializer.text)) consts.set(n.name.getText(sf), n.initializer.text)
    ts.forEachChild(n, collect)
  }
  collect(sf)
  const visit = (n: ts.Node, enclosingBase: string | undefined): void => {
    let base = enclosingBase
    if (ts.isClassDeclaration(n)) {
      const ext = n.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]
      base = ext ? ext.expression.getText(sf) : undefined
      classOf.set(n, base ?? '')
    }
    const isNew = ts.isNewExpression(n)
    const isSuper = ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.SuperKeyword
    if ((isNew || isSuper) && n.arguments) {
      const cls = isNew ? (n as ts.NewExpression).expression.getText(sf) : base ?? ''
      for (const a of n.arguments) {
        const code = ts.isStringLiteral(a) && /^E_/.test(a.text) ? a.text : ts.isIdentifier(a) ? consts.get(a.text) : undefined
        if (code) sites.push({ cls, code, where: `${relative(ROOT, file)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}` })
      }
    }
    ts.forEachChild(n, (c) => visit(c, base))
  }
  visit(sf, undefined)
  return sites
}

describe('error codes are a contract (spec/errors.md)', () => {
  it('every code has one row with its exit status, meaning and fix; no row names a code that is gone', async () => {
    const rows = await specRows()
    assert.ok(rows.length >= Object.keys(ERROR_CODES).length, `spec/errors.md has ${rows.length} rows; the table reader found fewer rows than there are codes`)
    const byCode = new Map<string, Row[]>()
    for (const r of rows) byCode.set(r.code, [...byCode.get(r.code) ?? [], r])
    const problems: string[] = []
    for (const [code, exit] of Object.entries(ERROR_CODES)) {
      const rs = byCode.get(code) ?? []
      if (rs.length === 0) problems.push(`${code} (exit ${exit}) has no row in spec/errors.md`)
      if (rs.length > 1) problems.push(`${code} has ${rs.length} rows (lines ${rs.map((r) => r.line).join(', ')})`)
      for (const r of rs) {
        if (r.exit !== exit) problems.push(`${code}: spec/errors.md line ${r.line} says exit ${r.exit}, src/errors.ts gives ${exit}`)
        if (!r.meaning || !r.fix) problems.push(`${code}: spec/errors.md line ${r.line} needs a meaning and a fix`)
      }
    }
    for (const r of rows) if (!(r.code in ERROR_CODES)) problems.push(`spec/errors.md line ${r.line} documents ${r.code}, which src/errors.ts no longer has`)
    assert.deepEqual(problems, [])
  })

  it('every E_ code written in src/ is in the table', async () => {
    const unknown: string[] = []
    let seen = 0
    for (const f of await sourceFiles()) {
      for (const m of (await readFile(f, 'utf8')).matchAll(/['"`](E_[A-Z0-9_]+)['"`]/g)) {
        seen++
        if (!(m[1]! in ERROR_CODES)) unknown.push(`${relative(ROOT, f)}: ${m[1]}`)
      }
    }
    assert.ok(seen > 100, `only ${seen} codes found in src/; the scan is broken`)
    assert.deepEqual(unknown, [])
  })

  it('every throw site uses a code whose exit status is its class\'s', async () => {
    const wrong: string[] = []
    const used = new Set<string>()
    let checked = 0
    for (const f of await sourceFiles()) {
      for (const s of throwSites(f, await readFile(f, 'utf8'))) {
        used.add(s.code)
        const want = CLASS_EXIT[s.cls]
        if (want === undefined) continue
        checked++
        const exit = (ERROR_CODES as Record<string, number>)[s.code]
        if (exit !== want) wrong.push(`${s.where}: new ${s.cls}(..., '${s.code}') exits ${exit ?? '(no row)'}, but a ${s.cls} stands for exit ${want}`)
      }
    }
    assert.ok(checked > 150, `only ${checked} throw sites found; the source reader is broken`)
    assert.deepEqual(wrong, [])
    // and every code of the table is thrown somewhere: a row for a code nothing throws is stale
    const unthrown = Object.keys(ERROR_CODES).filter((c) => !used.has(c))
    assert.deepEqual(unthrown, [], 'codes in src/errors.ts that nothing throws; remove them and their rows')
  })

  it('each class reports the exit status of its code', () => {
    assert.equal(new UsageError('x', 'E_USAGE').exitCode, 2)
    assert.equal(new UnknownModelError('x').exitCode, 2)
    assert.equal(new UnknownModelError('x').code, 'E_UNKNOWN_MODEL')
    assert.equal(new CheckError('x', 'E_DIRTY').exitCode, 1)
    assert.equal(new NotFoundError('x').exitCode, 1)
    assert.equal(new CorruptObjectError('x').exitCode, 1)
    assert.equal(new FormatError('x', 'E_MANIFEST').exitCode, 3)
    assert.equal(new ZooError('x', 'E_GIT').exitCode, 3)
    assert.equal(new ZooError('x', 'E_NOT_A_REPO').exitCode, 2, 'the code, not the class, decides')
  })
})
