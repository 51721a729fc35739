/**
 * Pack writes with O_DIRECT (src/cas/append-write.ts): the bytes on disk are exactly the records
 * appended, in both modes, whatever the part sizes and however the staging blocks cut them; a read
 * of the open pack sees every byte appended so far; and `git zoo add` writes byte-identical packs
 * with direct I/O and through the page cache (GIT_ZOO_DIRECT_IO=0), and on a filesystem that refuses
 * O_DIRECT (a ramfs, where root can mount one) falls back to buffered writes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { AppendWriter, STAGE, DIRECT_ALIGN } from '../src/cas/append-write.js'
import { run, tempRepo, zoo } from './cli.js'

const MiB = 1024 * 1024

/** Deterministic bytes (xorshift32), so a failure is reproducible. */
function bytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 0xff }
  return out
}

for (const direct of [true, false]) {
  test(`AppendWriter (${direct ? 'O_DIRECT' : 'buffered'}): the file holds exactly the parts appended, readable while open, cut to its length`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packw-'))
    try {
      const path = join(dir, 'p.pack')
      const w = await AppendWriter.create(path, dir, { direct })
      if (!direct) assert.equal(w.direct, false)
      // odd sizes: parts that straddle the 4 KiB blocks and the staging buffers, and one bigger than a buffer
      const sizes = [8, 44, 262144, 3, 4093, STAGE - 1, 17, STAGE + 5, 1, 100000]
      const parts = sizes.map((n, i) => bytes(i + 1, n))
      const want: Uint8Array[] = []
      for (const [i, p] of parts.entries()) {
        await w.append([p])
        want.push(p)
        if (i === 4 || i === 7) {
          // a reader's own handle sees every byte appended so far
          await w.readable()
          const seen = await readFile(path)
          const so = Buffer.concat(want)
          assert.ok(seen.length >= so.length, `readable: ${seen.length} < ${so.length}`)
          assert.ok(seen.subarray(0, so.length).equals(so), `readable after part ${i}: bytes differ`)
          if (direct) assert.ok(seen.subarray(so.length).every((b) => b === 0), 'only zero padding past the end')
        }
      }
      // appended parts may be reused once release() settles: overwrite them, the file must not change
      await w.release()
      const expect = Buffer.concat(want)
      for (const p of parts) p.fill(0xee)
      await w.finish()
      await w.fd.sync()
      await w.fd.close()
      assert.equal(w.size, expect.length)
      const got = await readFile(path)
      assert.equal(got.length, expect.length, 'the file is exactly the bytes appended (no padding left)')
      assert.ok(got.equals(expect), 'bytes on disk differ from the bytes appended')
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
}

for (const direct of [true, false]) {
  test(`AppendWriter.appendAligned (${direct ? 'O_DIRECT' : 'buffered'}): blocks written straight from page-aligned memory give exactly the bytes appended`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zoo-packw-'))
    try {
      const path = join(dir, 'out.bin')
      const w = await AppendWriter.create(path, dir, { direct })
      // page-aligned memory, as get's slabs are (a shared WebAssembly.Memory); room for a head and the padding
      const pages = Math.ceil((STAGE + 3 * DIRECT_ALIGN) / 65536)
      const block = new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as ArrayBuffer)
      // lengths that end inside a block, exactly on one, shorter than one, and longer than a staging buffer
      const sizes = [44, 262144 + 7, 4096 - 51, 1, STAGE + 4095, 8192, 3, 100000]
      const want: Uint8Array[] = []
      for (const [i, n] of sizes.entries()) {
        const head = w.size % DIRECT_ALIGN
        const part = bytes(100 + i, n)
        block.fill(0xaa) // whatever the block held before: only [head, head + n) is the caller's
        block.set(part, head)
        await w.appendAligned(block, head, n)
        want.push(part)
      }
      await w.finish()
      await w.fd.sync()
      await w.fd.close()
      // ext4, xfs and btrfs take direct writes from page-aligned memory: the direct path was the one tested
      const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim()
      if (direct && ['ext2/ext3', 'ext4', 'xfs', 'btrfs'].includes(fsType)) assert.equal(w.direct, true, `O_DIRECT refused on ${fsType}`)
      if (!direct) assert.equal(w.direct, false)
      const expect = Buffer.concat(want)
      assert.equal(w.size, expect.length)
      const got = await readFile(path)
      assert.equal(got.length, expect.length, 'the file is exactly the bytes appended')
      assert.ok(got.equals(expect), 'bytes on disk differ from the bytes appended')
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
}

test('AppendWriter.appendAligned (O_DIRECT): bytes that do not start at the file\'s offset in its block are refused, naming what was expected', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-packw-'))
  try {
    const w = await AppendWriter.create(join(dir, 'out.bin'), dir, { direct: true })
    const pages = Math.ceil((2 * DIRECT_ALIGN) / 65536)
    const block = new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as ArrayBuffer)
    await w.appendAligned(block, 0, 100)
    if (w.direct) {
      // the file's next byte is at 100 in its block: 0 and 99 are wrong heads, 100 is the right one
      await assert.rejects(w.appendAligned(block, 0, 10), /appendAligned: the bytes must start at offset 100 of a page-aligned block \(got 0, block offset 0\)/)
      await assert.rejects(w.appendAligned(block, 99, 10), /must start at offset 100 .*got 99/)
      await w.appendAligned(block, 100, 10)
      assert.equal(w.size, 110)
    } else {
      const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim()
      assert.ok(!['ext2/ext3', 'ext4', 'xfs', 'btrfs'].includes(fsType), `O_DIRECT refused on ${fsType}`)
    }
    await w.abandon()
    await w.fd.close()
  } finally { await rm(dir, { recursive: true, force: true }) }
})

test('AppendWriter: a pack smaller than one block is cut to its length; O_DIRECT is used where the filesystem takes it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-packw-'))
  try {
    const w = await AppendWriter.create(join(dir, 'small.pack'), dir, { direct: true })
    await w.append([Buffer.from('ZOOPACK1'), bytes(9, 100)])
    await w.finish(); await w.fd.close()
    assert.equal((await stat(join(dir, 'small.pack'))).size, 108)
    assert.ok(DIRECT_ALIGN > 108)
    // ext4, xfs, btrfs and tmpfs (Linux 6.6 and later) take direct writes from page-aligned staging
    const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim()
    if (['ext2/ext3', 'ext4', 'xfs', 'btrfs'].includes(fsType)) assert.equal(w.direct, true, `O_DIRECT refused on ${fsType}`)
  } finally { await rm(dir, { recursive: true, force: true }) }
})

test('git zoo add writes the same pack bytes with O_DIRECT and through the page cache (GIT_ZOO_DIRECT_IO=0), and get writes the same file either way', async () => {
  const packsOf = async (dir: string): Promise<Buffer[]> => {
    const p = join(dir, '.git', 'zoo', 'packs')
    const names = (await readdir(p)).filter((n) => n.endsWith('.pack'))
    return Promise.all(names.map((n) => readFile(join(p, n))))
  }
  const file = bytes(77, 21 * MiB + 12345) // the slab path (16 MiB and up), several staging buffers, a partial last block
  const repos = [await tempRepo('zoo-packw-a-'), await tempRepo('zoo-packw-b-')]
  try {
    const got: Buffer[][] = []
    const modes: number[] = []
    for (const [i, r] of repos.entries()) {
      await writeFile(join(r.dir, 'w.bin'), file)
      assert.equal((await zoo(r.dir, ['init'])).code, 0)
      const env = i === 0 ? {} : { GIT_ZOO_DIRECT_IO: '0' }
      const a = await zoo(r.dir, ['add', 'w.bin', '--name', 'm', '--json'], env)
      assert.equal(a.code, 0, a.stderr)
      const g = await zoo(r.dir, ['get', 'm', '--out', join(r.dir, 'out')], env)
      assert.equal(g.code, 0, g.stderr)
      assert.equal(createHash('sha256').update(await readFile(join(r.dir, 'out', 'w.bin'))).digest('hex'), createHash('sha256').update(file).digest('hex'))
      got.push(await packsOf(r.dir))
      modes.push((await stat(join(r.dir, 'out', 'w.bin'))).mode & 0o777)
    }
    assert.equal(modes[0], modes[1], 'get writes the same file mode either way')
    assert.equal(modes[0]! & 0o200, 0o200, 'the file got back is writable by its owner')
    assert.equal(got[0]!.length, 1)
    assert.equal(got[1]!.length, 1)
    assert.ok(got[0]![0]!.equals(got[1]![0]!), `packs differ: ${got[0]![0]!.length} and ${got[1]![0]!.length} bytes`)
  } finally { for (const r of repos) await r.cleanup() }
})

test('a filesystem that refuses O_DIRECT (ramfs) gets buffered writes: add, get and verify work and leave no stray file', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'zoo-ramfs-'))
  const mnt = join(work, 'mnt')
  await mkdir(mnt)
  const mount = await run('mount', ['-t', 'ramfs', 'ramfs', mnt], { cwd: work })
  if (mount.code !== 0) {
    await rm(work, { recursive: true, force: true })
    t.skip(`cannot mount a ramfs here (${mount.stderr.trim()}): needs root`)
    return
  }
  const r = await tempRepo('zoo-ramfs-repo-')
  try {
    // the writer alone: O_DIRECT asked, refused at open (EINVAL), buffered instead
    const w = await AppendWriter.create(join(mnt, 'alone.pack'), mnt, { direct: true })
    assert.equal(w.direct, false, 'ramfs took O_DIRECT')
    await w.append([bytes(5, 10000)]); await w.finish(); await w.fd.close()
    assert.deepEqual(await readFile(join(mnt, 'alone.pack')), Buffer.from(bytes(5, 10000)))
    await rm(join(mnt, 'alone.pack'))

    const file = bytes(11, 18 * MiB + 777)
    await writeFile(join(r.dir, 'w.bin'), file)
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    const env = { GIT_ZOO_STORE: join(mnt, 'store') }
    const a = await zoo(r.dir, ['add', 'w.bin', '--name', 'm'], env)
    assert.equal(a.code, 0, a.stderr)
    const out = join(mnt, 'out')
    const g = await zoo(r.dir, ['get', 'm', '--out', out], env)
    assert.equal(g.code, 0, g.stderr)
    assert.ok((await readFile(join(out, 'w.bin'))).equals(Buffer.from(file)), 'get gave other bytes')
    assert.deepEqual(await readdir(out), ['w.bin'], 'no temp file left beside the output')
    const v = await zoo(r.dir, ['verify'], env)
    assert.equal(v.code, 0, v.stderr)
    const packs = await readdir(join(mnt, 'store', 'packs'))
    assert.equal(packs.filter((n) => n.endsWith('.pack')).length, 1, packs.join(' '))
    assert.equal(packs.filter((n) => n.endsWith('.idx')).length, 1, packs.join(' '))
  } finally {
    await r.cleanup()
    await run('umount', [mnt], { cwd: work })
    await rm(work, { recursive: true, force: true })
  }
})
