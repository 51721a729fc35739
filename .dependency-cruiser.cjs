/**
 * The import-boundary check (npm test runs it: test/house.test.ts). The layer table is read from
 * spec/architecture.md, so the spec and the check cannot drift: each row names a folder (or a
 * top-level file) of src/ and what it may import; every other import of a src/ module is forbidden.
 * Run by hand: npx depcruise src --config .dependency-cruiser.cjs
 */
const { readFileSync, readdirSync } = require('node:fs')
const { join } = require('node:path')

const specFile = join(__dirname, 'spec', 'architecture.md')
const srcDir = join(__dirname, 'src')

/** `{ unit: [allowed units] | '*' }` from the table's rows: | `unit` | owns | may import | */
function readLayers(text) {
  const layers = {}
  for (const line of text.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|[^|]*\|([^|]*)\|\s*$/.exec(line)
    if (!m) continue
    const may = [...m[2].matchAll(/`([^`]+)`/g)].map((x) => x[1])
    layers[m[1]] = may.includes('*') ? '*' : may
  }
  return layers
}

const layers = readLayers(readFileSync(specFile, 'utf8'))
const units = readdirSync(srcDir, { withFileTypes: true }).map((e) => e.name).filter((n) => !n.startsWith('.'))
const missing = units.filter((u) => !(u in layers))
if (missing.length) {
  throw new Error(`${specFile}: the layer table has no row for src/${missing.join(', src/')}; add one (what it owns, what it may import)`)
}
for (const [unit, may] of Object.entries(layers)) {
  if (may === '*') continue
  const unknown = may.filter((u) => !(u in layers))
  if (unknown.length) throw new Error(`${specFile}: the row of ${unit} allows ${unknown.join(', ')}, which the table does not list`)
}

// no cycles between folders: the table's edges (cli's `*` aside) must form no cycle
const state = new Map()
const visit = (unit, path) => {
  if (state.get(unit) === 2 || layers[unit] === '*') return
  if (state.get(unit) === 1) throw new Error(`${specFile}: the layer table has a cycle: ${[...path.slice(path.indexOf(unit)), unit].join(' -> ')}; one of these rows must not import the next`)
  state.set(unit, 1)
  for (const next of layers[unit]) visit(next, [...path, unit])
  state.set(unit, 2)
}
for (const unit of Object.keys(layers)) visit(unit, [])

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
/** A path regex for a unit: a folder (everything under it) or a top-level file. */
const unitPath = (u) => (u.endsWith('.ts') ? `^src/${esc(u)}$` : `^src/${esc(u)}/`)

const layerRules = Object.entries(layers)
  .filter(([, may]) => may !== '*')
  .map(([unit, may]) => ({
    name: `layer:${unit}`,
    comment: `src/${unit} may import only ${may.length ? may.join(', ') : 'nothing of src/'} (spec/architecture.md)`,
    severity: 'error',
    from: { path: unitPath(unit) },
    to: { path: '^src/', pathNot: [unit, ...may].map(unitPath) },
  }))

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'no import cycles (spec/architecture.md)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'command-imports-command',
      comment: 'a command file never imports another command file; shared CLI helpers live in src/cli/*.ts',
      severity: 'error',
      from: { path: '^src/cli/commands/([^/]+)\\.ts$' },
      to: { path: '^src/cli/commands/', pathNot: '^src/cli/commands/$1\\.ts$' },
    },
    {
      name: 'host-made-by-entry-points',
      comment: 'only entry points (cli, index.ts) import src/host.ts for more than its types: domain code receives a Host',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/index\\.ts$', '^src/host\\.ts$'] },
      to: { path: '^src/host\\.ts$', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    tsConfig: { fileName: join(__dirname, 'tsconfig.json') },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
  },
}
