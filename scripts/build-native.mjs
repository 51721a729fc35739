#!/usr/bin/env node
/**
 * Builds the BLAKE3 addon (`npm run build`, after the native front; also run by `npm install` from
 * a registry package, scripts/install-native.mjs): src/cas/blake3/{blake3.c,addon.c} compiled with
 * `cc -O3` against node's own Node-API headers into dist/native/blake3.node, the chunk hash that
 * src/cas/blake3.ts loads (spec/native.md). The addon is compiled to a temporary file, checked in a
 * child node (it must load and give the published BLAKE3 digests of three inputs with every variant
 * it offers), and only then renamed into place.
 *
 * dist/native/.npmignore keeps the addon out of `npm pack`: it is built for this machine only.
 * No C compiler, no node headers, a failed compile or check, or GIT_ZOO_NO_NATIVE=1: a one-line
 * note, no addon (an older one is removed), exit 0; chunk digests then use the JS BLAKE3.
 *
 *   node scripts/build-native.mjs            (CC=<compiler> to use another one)
 *   node scripts/build-native.mjs --quiet    (no note when skipped: the install script)
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, 'dist', 'native')
const target = join(out, 'blake3.node')
const sources = ['blake3.c', 'addon.c'].map((f) => join(root, 'src', 'cas', 'blake3', f))
const include = join(dirname(dirname(process.execPath)), 'include', 'node')
const cc = process.env.CC || 'cc'
const quiet = process.argv.includes('--quiet')

// Published digests (BLAKE3-team/BLAKE3 test_vectors.json, hash mode; input byte i is i % 251):
// one block, one chunk plus one byte (a parent), and 8193 bytes (a tree with an odd chunk).
const CHECK = `
const b3 = require(process.argv[1])
const want = { 0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
  8193: 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b' }
const bytes = new Uint8Array(8193).map((_, i) => i % 251)
for (const v of b3.variants()) for (const [n, hex] of Object.entries(want)) {
  const got = Buffer.from(b3.hash(bytes.subarray(0, Number(n)), v)).toString('hex')
  if (got !== hex) { console.error('variant ' + v + ', ' + n + ' bytes: ' + got + ' instead of ' + hex); process.exit(1) }
}
console.log(b3.variants().join(' '))
`

function skip(why) {
  rmSync(target, { force: true })
  if (!quiet) process.stderr.write(`native blake3: not built (${why}); chunk digests use the JS BLAKE3 (slower)\n`)
}

function build() {
  if (process.env.GIT_ZOO_NO_NATIVE === '1') return skip('GIT_ZOO_NO_NATIVE=1')
  if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) return skip(`no C compiler: \`${cc}\` does not run; install gcc (or set CC)`)
  if (!existsSync(join(include, 'node_api.h'))) return skip(`no Node-API headers in ${include}`)
  mkdirSync(out, { recursive: true })
  const tmp = join(out, `blake3.${process.pid}.tmp.node`)
  try {
    const flags = ['-O3', '-std=gnu11', '-Wall', '-Wno-psabi', '-shared', '-fPIC', '-fvisibility=hidden', '-I', include, '-o', tmp, ...sources]
    if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup')
    const r = spawnSync(cc, flags, { encoding: 'utf8' })
    if (r.status !== 0) return skip(`${cc} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 3).join(' / ')}`)
    const check = spawnSync(process.execPath, ['-e', CHECK, tmp], { encoding: 'utf8' })
    if (check.status !== 0) return skip(`the built addon failed its check: ${(check.stderr || check.error?.message || '').trim().split('\n').slice(-2).join(' / ')}`)
    // an addon is built for one machine: npm pack leaves it out (an install builds it from src/cas/blake3)
    writeFileSync(join(out, '.npmignore'), '*\n')
    renameSync(tmp, target)
    process.stderr.write(`native blake3: dist/native/blake3.node (${check.stdout.trim()})\n`)
  } finally {
    rmSync(tmp, { force: true })
  }
}

try {
  build()
} catch (e) {
  // never fail the build: the JS BLAKE3 gives the same digests
  try { skip(e instanceof Error ? e.message : String(e)) } catch { /* nothing to remove */ }
}
