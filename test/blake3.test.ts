/**
 * BLAKE3 for chunk CIDs (src/cas/blake3.ts and the addon of src/cas/blake3/, spec/native.md):
 * every SIMD variant this CPU runs, and the portable one, against the published test vectors
 * (test/fixtures/blake3-vectors.json) and against two independent implementations (@noble/hashes
 * and the b3sum program) on random buffers around every chunk, block and subtree edge; ranges in
 * place in a SharedArrayBuffer, a WebAssembly.Memory and a worker thread; bad arguments throw and
 * write nothing; `npm run build` built the addon when a C compiler is there, and
 * scripts/build-native.mjs skips cleanly (a note, exit 0, no addon) when it cannot build one.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { blake3 as noble } from '@noble/hashes/blake3'
import { build } from 'esbuild'
import { BLAKE3_LEN, blake3, blake3Backend, blake3Native, blake3NativePath, blake3Ranges, blake3WorkerPrelude, selectBlake3Backend } from '../src/cas/blake3.js'
import { ROOT } from './cli.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const vectors = (JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'blake3-vectors.json'), 'utf8')) as { cases: { input_len: number; hash: string }[] }).cases
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 251)
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0
const hasB3sum = spawnSync('b3sum', ['--version'], { stdio: 'ignore' }).status === 0
const native = blake3Native()
const variants = native ? native.variants() : []
// around block (64), chunk (1 KiB), two-chunk and odd-tree edges, our 256 KiB tensor chunks, and past a 512-chunk group
const SIZES = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024 + 5, 16 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 1024 * 1024 + 17, 8 * 1024 * 1024]

after(() => { selectBlake3Backend('auto') })

describe('blake3: the addon', () => {
  it('npm run build built dist/native/blake3.node when a C compiler is there, and this process uses it', { skip: !hasCc && 'no C compiler' }, () => {
    assert.ok(existsSync(blake3NativePath()!), `${blake3NativePath()} is missing: npm run build did not build the addon (node scripts/build-native.mjs says why)`)
    assert.equal(blake3Backend(), 'native')
    assert.ok(native)
    assert.equal(native.variants()[0], native.variant)
    assert.equal(native.variants().at(-1), 'portable')
    // GCC builds the lane kernels (spec/native.md): on x64 and arm64 at least the 128-bit one
    const gcc = /Free Software Foundation/.test(spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout)
    if (gcc && (process.arch === 'x64' || process.arch === 'arm64')) assert.ok(native.variants().includes('vec128'), native.variants().join(' '))
    // the built JS (dist/src, what bin/git-zoo.js falls back to) finds the same addon
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(join(ROOT, 'dist', 'src', 'cas', 'blake3.js'))}).then((m) => console.log(m.blake3Backend()))`], { encoding: 'utf8' })
    assert.equal(r.stdout.trim(), 'native', r.stderr)
  })
})

describe('blake3: published test vectors', () => {
  for (const v of [...variants, 'js']) {
    it(`${v}: every case of test_vectors.json (hash mode)`, { skip: v !== 'js' && !native && 'no addon' }, () => {
      for (const c of vectors) {
        const input = pattern(c.input_len)
        const got = v === 'js' ? noble(input) : native!.hash(input, v)
        assert.equal(hex(got), c.hash, `${v}, ${c.input_len} bytes`)
      }
    })
  }
  it('the module API: the same digests through blake3() and blake3Ranges() with each backend', () => {
    for (const backend of ['js', 'auto'] as const) {
      selectBlake3Backend(backend)
      const all = pattern(vectors.at(-1)!.input_len)
      const out = new Uint8Array(BLAKE3_LEN * vectors.length)
      blake3Ranges(all, vectors.map(() => 0), vectors.map((c) => c.input_len), out)
      vectors.forEach((c, i) => {
        assert.equal(hex(out.subarray(32 * i, 32 * i + 32)), c.hash, `${backend} ranges, ${c.input_len} bytes`)
        assert.equal(hex(blake3(all.subarray(0, c.input_len))), c.hash, `${backend}, ${c.input_len} bytes`)
      })
    }
    selectBlake3Backend('auto')
  })
})

describe('blake3: random buffers against @noble/hashes and b3sum', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zoo-b3-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const buffers = SIZES.map((n) => randomBytes(n))

  it('every variant, every size, equals @noble/hashes', { skip: !native && 'no addon' }, () => {
    buffers.forEach((b, i) => {
      const want = hex(noble(b))
      for (const v of variants) assert.equal(hex(native!.hash(b, v)), want, `${v}, ${SIZES[i]} bytes`)
    })
  })

  it('the default implementation equals b3sum --num-threads 1', { skip: !hasB3sum && 'b3sum is not installed' }, () => {
    const files = buffers.map((b, i) => { const f = join(dir, `in-${i}`); writeFileSync(f, b); return f })
    const r = spawnSync('b3sum', ['--num-threads', '1', '--no-names', ...files], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    buffers.forEach((b, i) => assert.equal(hex(blake3(b)), lines[i], `${SIZES[i]} bytes`))
  })
})

describe('blake3: ranges in place', () => {
  it('ranges of a SharedArrayBuffer and of a WebAssembly.Memory, digests written from outOff', () => {
    const sab = new SharedArrayBuffer(3 * 1024 * 1024)
    const src = new Uint8Array(sab, 4096) // a view that does not start at the buffer's start
    src.set(randomBytes(src.length))
    const offs = [0, 1, 5000, 262144, src.length - 1025, src.length]
    const lens = [0, 65536, 262144 + 3, 1024 * 1024, 1025, 0]
    const out = new Uint8Array(new SharedArrayBuffer(16 + 32 * offs.length))
    blake3Ranges(src, offs, lens, out, 16)
    assert.deepEqual([...out.subarray(0, 16)], new Array(16).fill(0))
    offs.forEach((o, i) => assert.equal(hex(out.subarray(16 + 32 * i, 48 + 32 * i)), hex(noble(src.subarray(o, o + lens[i]!))), `range ${i}`))

    const mem = new WebAssembly.Memory({ initial: 4 }) // 256 KiB
    const wasm = new Uint8Array(mem.buffer)
    wasm.set(randomBytes(wasm.length))
    const digests = new Uint8Array(64)
    blake3Ranges(wasm, Uint32Array.of(0, 100), Uint32Array.of(wasm.length, 3000), digests)
    assert.equal(hex(digests.subarray(0, 32)), hex(noble(wasm)))
    assert.equal(hex(digests.subarray(32)), hex(noble(wasm.subarray(100, 3100))))
  })

  for (const backend of ['auto', 'js'] as const) {
    it(`a worker thread through blake3WorkerPrelude() (${backend}) hashes a SharedArrayBuffer in place`, async () => {
      assert.equal(selectBlake3Backend(backend), backend === 'js' || !native ? 'js' : 'native')
      const prelude = blake3WorkerPrelude()
      selectBlake3Backend('auto')
      if (backend === 'auto' && native) assert.match(prelude, /blake3\.node/)
      const src = new Uint8Array(new SharedArrayBuffer(600 * 1024))
      src.set(randomBytes(src.length))
      const offs = [0, 1000, 300 * 1024]
      const lens = [256 * 1024, 1, 300 * 1024]
      const out = new Uint8Array(new SharedArrayBuffer(32 * offs.length))
      const worker = new Worker(`${prelude}
const { parentPort, workerData } = require('node:worker_threads')
blake3Ranges(workerData.src, workerData.offs, workerData.lens, workerData.out)
parentPort.postMessage('done')
`, { eval: true, workerData: { src, offs, lens, out } })
      const msg = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) })
      assert.equal(msg, 'done')
      await worker.terminate()
      offs.forEach((o, i) => assert.equal(hex(out.subarray(32 * i, 32 * i + 32)), hex(noble(src.subarray(o, o + lens[i]!))), `range ${i}`))
    })
  }
})

describe('blake3: bad arguments throw and write nothing', () => {
  const src = new Uint8Array(2048).fill(7)
  const cases: [string, () => void, RegExp][] = [
    ['a range past the end', () => blake3Ranges(src, [1024], [1025], new Uint8Array(32)), /range 0 \[1024, 1024 \+ 1025\) is outside src \(2048 bytes\)/],
    ['an offset past the end', () => blake3Ranges(src, [0, 2049], [0, 0], new Uint8Array(64)), /range 1 .* outside src/],
    ['a negative offset', () => blake3Ranges(src, [-1], [1], new Uint8Array(32)), /offs\[0\] must be a non-negative integer|outside src/],
    ['a fractional length', () => blake3Ranges(src, [0], [1.5], new Uint8Array(32)), /lens\[0\] must be a non-negative integer|outside src/],
    ['a huge length that wraps', () => blake3Ranges(src, [8], [2 ** 53 - 1], new Uint8Array(32)), /outside src/],
    ['offs and lens of different lengths', () => blake3Ranges(src, [0, 1], [1], new Uint8Array(64)), /same length/],
    ['an out too small', () => blake3Ranges(src, [0, 1], [1, 1], new Uint8Array(63)), /cannot hold 2 digests/],
    ['an outOff too far', () => blake3Ranges(src, [0], [1], new Uint8Array(64), 33), /cannot hold 1 digests from byte 33/],
  ]
  for (const backend of ['auto', 'js'] as const) {
    for (const [what, call, message] of cases) {
      it(`${backend}: ${what}`, () => {
        selectBlake3Backend(backend)
        try {
          assert.throws(call, message)
        } finally { selectBlake3Backend('auto') }
      })
    }
  }
  it('native: wrong types, a bad variant, and out untouched after a refused call', { skip: !native && 'no addon' }, () => {
    const n = native!
    assert.throws(() => n.hash(5 as unknown as Uint8Array), { name: 'TypeError', message: /bytes must be a typed array/ })
    assert.throws(() => n.hash(src, 'avx9000'), { name: 'RangeError', message: /variant "avx9000"/ })
    assert.throws(() => n.hashRanges(src, 'abc' as unknown as number[], [1], new Uint8Array(32)), { name: 'TypeError', message: /offs must be an array/ })
    assert.throws(() => n.hashRanges(src, ['1' as unknown as number], [1], new Uint8Array(32)), { name: 'TypeError', message: /offs\[0\] must be a number/ })
    assert.throws(() => n.hashRanges(src, [0], [1], {} as Uint8Array), { name: 'TypeError', message: /out must be a typed array/ })
    assert.throws(() => n.hashRanges(src, [0], [1], new Uint8Array(32), '0' as unknown as number), { name: 'TypeError', message: /outOff must be a number/ })
    const out = new Uint8Array(96).fill(0xee)
    assert.throws(() => n.hashRanges(src, [0, 0, 2000], [10, 20, 100], out), /range 2/)
    assert.ok(out.every((b) => b === 0xee), 'a refused call wrote digests')
    // a typed array of any element type is read as bytes, offsets count bytes
    const words = new Uint32Array(512).fill(0x07070707)
    assert.equal(hex(n.hash(words)), hex(noble(src)))
    assert.equal(hex(n.hash(new DataView(src.buffer, 1024))), hex(noble(src.subarray(1024))))
    assert.equal(hex(n.hash(src.buffer)), hex(noble(src)))
  })
  it('native: a variant name is taken whole: a NUL inside it or a name too long for the buffer is refused, not cut', { skip: !native && 'no addon' }, () => {
    const n = native!
    const v = n.variant
    assert.equal(hex(n.hash(src, v)), hex(noble(src)))
    assert.throws(() => n.hash(src, `${v}\0zz`), { name: 'RangeError', message: new RegExp(`variant "${v}" is followed by a NUL`) })
    assert.throws(() => n.hashRanges(src, [0], [1], new Uint8Array(32), 0, `${v}\0`), { name: 'RangeError', message: /NUL/ })
    const long = v + 'x'.repeat(32 - v.length)
    assert.throws(() => n.hash(src, long), { name: 'RangeError', message: /variant names are shorter than 32 bytes, not 32/ })
    assert.throws(() => n.hash(src, 'é'.repeat(20)), { name: 'RangeError', message: /not 40/ })
    assert.throws(() => n.hash(src, 'x'.repeat(31)), { name: 'RangeError', message: new RegExp(`variant "${'x'.repeat(31)}" is not one`) })
  })
  it('native: a bare SharedArrayBuffer is refused with a TypeError saying to pass a view; a view over it hashes its bytes', { skip: !native && 'no addon' }, () => {
    const n = native!
    const sab = new SharedArrayBuffer(2048)
    new Uint8Array(sab).fill(7)
    assert.throws(() => n.hash(sab as unknown as ArrayBuffer), { name: 'TypeError', message: /bytes must be .* \(a SharedArrayBuffer through a view: new Uint8Array\(sab\)\)/ })
    assert.throws(() => n.hashRanges(sab as unknown as ArrayBuffer, [0], [1], new Uint8Array(32)), { name: 'TypeError', message: /src must be/ })
    assert.equal(hex(n.hash(new Uint8Array(sab))), hex(noble(src)))
  })
  for (const backend of ['auto', 'js'] as const) {
    it(`${backend}: digests that would land on a range of src (out and src over the same bytes) are refused, nothing written; beside the ranges they are written`, () => {
      selectBlake3Backend(backend)
      try {
        const buf = new Uint8Array(4096).fill(9)
        const before = Buffer.from(buf)
        const src = buf.subarray(0, 2048)
        // out starts inside range 1 [1000, 1100): digest 0 would change range 1's bytes before they are hashed
        assert.throws(() => blake3Ranges(src, [0, 1000], [100, 100], buf.subarray(1050, 1200)), { name: 'RangeError', message: /overlap range 1 of src/ })
        // a range starting inside the digests (out before src in memory)
        assert.throws(() => blake3Ranges(buf.subarray(64), [0], [10], buf.subarray(0, 128), 40), { name: 'RangeError', message: /out's digests \[40, 72\) overlap range 0/ })
        assert.ok(Buffer.from(buf).equals(before), 'a refused call wrote digests')
        // touching, not overlapping; and empty ranges inside out are nothing read
        blake3Ranges(buf, [1948, 2144, 2060], [100, 100, 0], buf.subarray(2048, 2048 + 96))
        assert.equal(hex(buf.subarray(2048, 2080)), hex(noble(before.subarray(1948, 2048))))
        assert.equal(hex(buf.subarray(2080, 2112)), hex(noble(before.subarray(2144, 2244))))
        assert.equal(hex(buf.subarray(2112, 2144)), hex(noble(new Uint8Array(0))))
      } finally { selectBlake3Backend('auto') }
    })
  }
  it('native: selectBlake3Backend("native") works when the addon is there', { skip: !native && 'no addon' }, () => {
    assert.equal(selectBlake3Backend('native'), 'native')
    selectBlake3Backend('auto')
  })
})

describe('a registry install (npm pack, then the install script)', () => {
  it('ships the C sources but no binaries, and the install script builds both natives quietly, or skips them without a compiler; the addon is found from dist/src and from a bundle in dist/cli', { skip: !existsSync(join(ROOT, 'dist', 'cli')) && 'dist/cli is not built' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zoo-b3-pack-'))
    try {
      const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })
      assert.equal(packed.status, 0, packed.stderr)
      const tgz = join(dir, packed.stdout.trim().split('\n').at(-1)!)
      const listed = spawnSync('tar', ['tzf', tgz], { encoding: 'utf8' }).stdout.split('\n')
      for (const f of ['scripts/install-native.mjs', 'scripts/build-native.mjs', 'scripts/build-front.mjs', 'src/cas/blake3/blake3.c', 'src/cas/blake3/blake3_lanes.h', 'src/cas/blake3/addon.c', 'src/cli/front/git-zoo.c']) assert.ok(listed.includes(`package/${f}`), `${f} is not in the package`)
      assert.deepEqual(listed.filter((f) => /blake3\.node$|dist\/front\/git-zoo$/.test(f)), [], 'a machine\'s binary is in the package')
      assert.equal(spawnSync('tar', ['xzf', tgz, '-C', dir]).status, 0)
      const pkg = join(dir, 'package')
      const install = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [join(pkg, 'scripts', 'install-native.mjs')], { cwd: pkg, encoding: 'utf8', env: { ...process.env, GIT_ZOO_NO_NATIVE: '', GIT_ZOO_NO_FRONT: '', ...env } })
      let r = install({ CC: join(dir, 'no-such-cc') })
      assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', ''])
      assert.ok(!existsSync(join(pkg, 'dist', 'native', 'blake3.node')) && !existsSync(join(pkg, 'dist', 'front')))
      symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules')) // its dependencies, as npm installs them
      // without the addon, `git zoo init` says its new BLAKE3 zoo will hash in JavaScript, and how to fix it
      const repo = join(dir, 'repo')
      mkdirSync(repo)
      assert.equal(spawnSync('git', ['init', '-q'], { cwd: repo }).status, 0)
      const init = spawnSync(process.execPath, [join(pkg, 'bin', 'git-zoo.js'), 'init'], { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_ZOO_SERVER: '0' } })
      assert.equal(init.status, 0, init.stderr)
      assert.match(init.stderr, /note: this zoo's BLAKE3 chunk hashes will be computed in JavaScript here \(no addon at .*blake3\.node\).*npm rebuild git-zoo/)
      if (!hasCc) return
      r = install({})
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stderr, /native blake3: dist\/native\/blake3\.node/)
      // with it, no such note
      rmSync(join(repo, '.zoo'), { recursive: true, force: true })
      const again = spawnSync(process.execPath, [join(pkg, 'bin', 'git-zoo.js'), 'init'], { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_ZOO_SERVER: '0' } })
      assert.equal(again.status, 0, again.stderr)
      assert.doesNotMatch(again.stderr, /computed in JavaScript/)
      const check = spawnSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(join(pkg, 'dist', 'src', 'cas', 'blake3.js'))}).then((m) => console.log(m.blake3Backend(), Buffer.from(m.blake3(new Uint8Array(0))).toString('hex')))`], { encoding: 'utf8', cwd: pkg })
      assert.equal(check.stdout.trim(), `native ${vectors[0]!.hash}`, check.stderr)
      // and from inside an esbuild bundle in dist/cli/ (as scripts/build-cli.mjs makes them: ESM, packages external)
      await build({ stdin: { contents: `import { blake3Backend } from ${JSON.stringify(join(ROOT, 'src', 'cas', 'blake3.ts'))}\nconsole.log(blake3Backend())\n`, resolveDir: ROOT, loader: 'ts' }, outfile: join(pkg, 'dist', 'cli', 'probe.js'), bundle: true, format: 'esm', platform: 'node', packages: 'external', logLevel: 'silent' })
      const bundled = spawnSync(process.execPath, [join(pkg, 'dist', 'cli', 'probe.js')], { encoding: 'utf8', cwd: pkg })
      assert.equal(bundled.stdout.trim(), 'native', bundled.stderr)
      if (existsSync(join(ROOT, 'dist', 'front', 'git-zoo'))) assert.ok(existsSync(join(pkg, 'dist', 'front', 'git-zoo')), 'the install did not build the native front')
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('scripts/build-native.mjs', () => {
  // a copy of the script and the sources in a scratch project, so the real dist/native is never touched
  const dir = mkdtempSync(join(tmpdir(), 'zoo-b3-build-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'scripts'))
  cpSync(join(ROOT, 'scripts', 'build-native.mjs'), join(dir, 'scripts', 'build-native.mjs'))
  cpSync(join(ROOT, 'src', 'cas', 'blake3'), join(dir, 'src', 'cas', 'blake3'), { recursive: true })
  const addon = join(dir, 'dist', 'native', 'blake3.node')
  const build = (env: NodeJS.ProcessEnv = {}, args: string[] = []) => spawnSync(process.execPath, [join(dir, 'scripts', 'build-native.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, GIT_ZOO_NO_NATIVE: '', ...env } })

  it('builds a checked addon atomically, and without a compiler or with GIT_ZOO_NO_NATIVE=1 notes it, exits 0 and removes the old one', { skip: !hasCc && 'no C compiler' }, () => {
    let r = build()
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /^native blake3: dist\/native\/blake3\.node \(.*portable\)\n$/)
    assert.ok(existsSync(addon))
    assert.equal(readFileSync(join(dir, 'dist', 'native', '.npmignore'), 'utf8'), '*\n')
    r = build({ CC: join(dir, 'no-such-cc') })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /^native blake3: not built \(no C compiler: .*\); chunk digests use the JS BLAKE3 \(slower\)\n$/)
    assert.ok(!existsSync(addon), 'an older addon was left in place')
    assert.equal(build().status, 0)
    r = build({ GIT_ZOO_NO_NATIVE: '1' })
    assert.equal(r.status, 0)
    assert.match(r.stderr, /not built \(GIT_ZOO_NO_NATIVE=1\)/)
    assert.ok(!existsSync(addon))
    // a compiler that fails: a note naming it, exit 0, no addon, no temporary file left behind
    const bad = join(dir, 'bad-cc')
    writeFileSync(bad, '#!/bin/sh\n[ "$1" = --version ] && exit 0\necho "bad-cc: internal error" >&2\nexit 1\n', { mode: 0o755 })
    r = build({ CC: bad }, ['--quiet'])
    assert.equal(r.status, 0)
    assert.equal(r.stderr, '')
    r = build({ CC: bad })
    assert.match(r.stderr, /not built \(.*bad-cc failed: bad-cc: internal error\)/)
    assert.deepEqual(spawnSync('ls', ['-A', join(dir, 'dist', 'native')], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean), ['.npmignore'])
  })
})
