#!/usr/bin/env node
/**
 * Builds the native front (`npm run build`, after the CLI bundle): src/cli/front/git-zoo.c compiled
 * with `cc -O2` into dist/front/git-zoo, and dist/front/build-id, the id compiled into it. bin/git-zoo
 * runs the binary when it is there; it sends `find` and `ls` to the query server and everything else
 * to node (spec/server.md). The build id is a digest of the bundle (dist/cli/), the client's source
 * and the node that built it, so a server of an older build is never asked to answer a newer client.
 *
 * dist/front/.npmignore keeps the binary out of `npm pack`: it is built for this machine only.
 * No C compiler (or GIT_ZOO_NO_FRONT=1, or a failed compile): a one-line note, no binary, and any
 * older one is removed (it would ask servers of an older build); every command then runs through
 * node. The script never fails. A registry install builds it too (scripts/install-native.mjs, with
 * --quiet: no note when skipped).
 *
 *   node scripts/build-front.mjs          (CC=<compiler> to use another one)
 *   node scripts/build-front.mjs --quiet  (no note when skipped)
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, 'dist', 'front')
const source = join(root, 'src', 'cli', 'front', 'git-zoo.c')
const cc = process.env.CC || 'cc'
const quiet = process.argv.includes('--quiet')

/** `text` as a C string literal: printable ASCII as is (but \\, " and ?), every other byte as an octal escape. */
function cString(text) {
  let out = '"'
  for (const b of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(b)
    out += b >= 0x20 && b < 0x7f && c !== '"' && c !== '\\' && c !== '?' ? c : '\\' + b.toString(8).padStart(3, '0')
  }
  return out + '"'
}

function skip(why) {
  rmSync(out, { recursive: true, force: true })
  if (!quiet) process.stderr.write(`native front: not built (${why}); git zoo runs every command through node\n`)
}

function build() {
  if (process.env.GIT_ZOO_NO_FRONT === '1') skip('GIT_ZOO_NO_FRONT=1')
  else if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) skip(`no C compiler: \`${cc}\` does not run; install gcc (or set CC) for a faster find and ls`)
  else {
    const hash = createHash('sha256')
    const files = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)])
    for (const f of files(join(root, 'dist', 'cli')).filter((f) => f.endsWith('.js')).sort()) hash.update(f.slice(root.length)).update('\0').update(readFileSync(f))
    hash.update(readFileSync(source)).update(process.execPath).update(process.version)
    const id = hash.digest('hex').slice(0, 32)
    mkdirSync(out, { recursive: true })
    const tmp = join(out, `git-zoo.${process.pid}.tmp`)
    const r = spawnSync(cc, ['-O2', '-Wall', '-o', tmp, `-DGZ_BUILD_ID="${id}"`, `-DGZ_NODE=${cString(process.execPath)}`, source], { encoding: 'utf8' })
    if (r.status !== 0) {
      rmSync(tmp, { force: true })
      skip(`${cc} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 3).join(' / ')}`)
    } else {
      // a binary is built for one machine: npm pack leaves it out (a checkout, npm link, a git install or the install script builds it)
      writeFileSync(join(out, '.npmignore'), '*\n')
      writeFileSync(join(out, `build-id.${process.pid}.tmp`), id + '\n')
      renameSync(tmp, join(out, 'git-zoo'))
      renameSync(join(out, `build-id.${process.pid}.tmp`), join(out, 'build-id'))
      process.stderr.write(`native front: dist/front/git-zoo (build ${id.slice(0, 12)})\n`)
    }
  }
}

try {
  build()
} catch (e) {
  // never fail the build (a missing dist/cli, a full disk): node answers every command
  try { skip(e instanceof Error ? e.message : String(e)) } catch { /* nothing to remove */ }
}
