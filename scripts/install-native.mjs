#!/usr/bin/env node
/**
 * The package's `install` script: builds the two native parts from the C sources the package ships
 * (spec/native.md), for the machine it is installed on, since `npm pack` leaves the binaries out:
 *   dist/native/blake3.node   the BLAKE3 addon (scripts/build-native.mjs, src/cas/blake3/)
 *   dist/front/git-zoo        the native front for find and ls (scripts/build-front.mjs, src/cli/front/git-zoo.c)
 * Quiet and never failing: without a C compiler (or node's headers) a part is skipped without a word,
 * and git zoo runs without it (every command through node, chunk digests with the JS BLAKE3).
 * Nothing is downloaded. In a source checkout (a .git folder here) it does nothing: `npm ci` runs
 * `prepare`, whose `npm run build` builds both after the bundle they depend on.
 *
 *   node scripts/install-native.mjs
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

if (!existsSync(join(root, '.git'))) {
  for (const [script, needs] of [['build-native.mjs', join(root, 'src', 'cas', 'blake3', 'addon.c')], ['build-front.mjs', join(root, 'dist', 'cli')]]) {
    if (!existsSync(needs) || !existsSync(join(root, 'scripts', script))) continue
    // each builder exits 0 whatever happens; a crash of one is no reason to fail the install
    spawnSync(process.execPath, [join(root, 'scripts', script), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'], cwd: root })
  }
}
