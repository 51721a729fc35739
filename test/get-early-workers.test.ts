/**
 * `git zoo get` starts its hashing workers before it opens the store (src/zoo/checkout.ts,
 * startWriteWorkers), guessing the model's chunk hash from the zoo's `chunk_hash`; writeModelFiles
 * checks the guess against the model's first chunk. Both ways through the real binary, on models over
 * the worker threshold: a guess that fits (BLAKE3 chunks in a BLAKE3 zoo) and one that does not
 * (sha2-256 chunks added before the zoo switched to BLAKE3): every byte comes back exactly. That no
 * worker is left running cannot be seen here: the process exits as soon as its output is flushed
 * (src/cli/main.ts PROMPT_EXIT), whatever it left; test/served-data.test.ts checks it where leaks
 * would pile up, in the server: its threads and open files stay the same over rounds of add, get
 * (this wrong guess included) and verify.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, zoo, git, safetensorsBytes } from './helpers-git.js'

/** 5 Mi float32s: a 20 MiB safetensors file, over the worker threshold (16 MiB). */
const FLOATS = 5 * 1024 * 1024

describe('get with workers started ahead', () => {
  it('writes sha2-256 and BLAKE3 models of a switched zoo byte for byte', { timeout: 120_000 }, async () => {
    const r = await initRepo()
    try {
      assert.equal((await zoo(r.dir, ['init', '-q'])).code, 0)
      const configPath = join(r.dir, '.zoo', 'config.json')
      const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
      assert.equal(config.chunk_hash, 'blake3', 'git zoo init writes blake3')
      // a zoo from before the key: sha2-256 chunks
      const { chunk_hash: _, ...older } = config
      await writeFile(configPath, JSON.stringify(older, null, 2) + '\n')
      await git(r.dir, 'add', '-A')
      await git(r.dir, 'commit', '-q', '-m', 'zoo (sha2-256)')
      const base = join(r.dir, '..', `${r.dir.split('/').pop()}`)
      const oldBytes = safetensorsBytes(FLOATS, 1)
      await writeFile(`${base}-old.safetensors`, oldBytes)
      assert.equal((await zoo(r.dir, ['add', `${base}-old.safetensors`, '--name', 'old/m'])).code, 0)
      // switched to BLAKE3: the guess is right for new/m, wrong for old/m
      await writeFile(configPath, JSON.stringify(config, null, 2) + '\n')
      await git(r.dir, 'commit', '-q', '-am', 'blake3')
      const newBytes = safetensorsBytes(FLOATS, 2)
      await writeFile(`${base}-new.safetensors`, newBytes)
      assert.equal((await zoo(r.dir, ['add', `${base}-new.safetensors`, '--name', 'new/m'])).code, 0)

      for (const [name, bytes, file] of [['old/m', oldBytes, 'old'], ['new/m', newBytes, 'new']] as const) {
        const out = `${base}-out-${file}`
        const got = await zoo(r.dir, ['get', name, '--out', out, '--json'])
        assert.equal(got.code, 0, got.stderr)
        assert.deepEqual(await readFile(join(out, `${r.dir.split('/').pop()}-${file}.safetensors`)), bytes, `${name} byte for byte`)
      }
      // a get that fails after the workers started (its output folder is a file) ends with its error
      await writeFile(`${base}-blocked`, 'not a folder')
      const blocked = await zoo(r.dir, ['get', 'new/m', '--out', `${base}-blocked`])
      assert.notEqual(blocked.code, 0)
      assert.match(blocked.stderr, /^git zoo: /m)
      assert.doesNotMatch(blocked.stderr, /internal error/)
    } finally { await r.cleanup() }
  })
})
