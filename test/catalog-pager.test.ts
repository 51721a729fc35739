/**
 * `ls` on a terminal pages like git: stdout a TTY (made by util-linux `script`), the listing goes to
 * git's pager (GIT_PAGER here: a command that saves what it reads); --no-pager, a pipe or a pager of
 * `cat` print it directly.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { tempRepo, zoo, git, run, BIN } from './cli.js'

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0

test('ls pages on a terminal, prints everything with --no-pager or into a pipe', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await writeFile(join(dir, '.gitignore'), '.zoo/cache/\nsrc/\npaged*\n')
    await git(dir, 'add', '.gitignore', '.zoo')
    await git(dir, 'commit', '-q', '-m', 'zoo')
    for (let i = 0; i < 30; i++) {
      await mkdir(join(dir, 'src', `m${String(i).padStart(2, '0')}`, 'checkpoint_000001'), { recursive: true })
      await writeFile(join(dir, 'src', `m${String(i).padStart(2, '0')}`, 'checkpoint_000001', 'w.bin'), Buffer.alloc(64, i))
    }
    const imp = await zoo(dir, ['import', 'src', '--prefix', 'p', '--json'])
    assert.equal(imp.code, 0, imp.stderr)
    // on a terminal: through the pager
    const onTty = (args: string, file: string): Promise<{ code: number; stdout: string }> =>
      run('script', ['-qec', `${process.execPath} ${BIN} ${args}`, '/dev/null'], { cwd: dir, env: { GIT_PAGER: `cat > ${file}`, GIT_ZOO_DEBUG: '' } })
    const t = await onTty('ls', 'paged1')
    assert.equal(t.code, 0)
    const pagedText = await readFile(join(dir, 'paged1'), 'utf8')
    assert.equal(pagedText.split('\n').filter((l) => l.startsWith('p/m')).length, 30)
    assert.ok(!t.stdout.includes('p/m00'), 'the listing went to the pager, not straight to the terminal')
    // --no-pager: straight to the terminal
    const n = await onTty('ls --no-pager', 'paged2')
    assert.equal(n.code, 0)
    assert.ok(!existsSync(join(dir, 'paged2')))
    assert.equal(n.stdout.split('\n').filter((l) => l.startsWith('p/m')).length, 30)
    // into a pipe: no pager
    const piped = await zoo(dir, ['ls'], { GIT_PAGER: 'cat > paged3' })
    assert.equal(piped.stdout.split('\n').filter((l) => l.startsWith('p/m')).length, 30)
    assert.ok(!existsSync(join(dir, 'paged3')))
    // a pager that cannot start: the listing is printed all the same
    const broken = await run('script', ['-qec', `${process.execPath} ${BIN} ls`, '/dev/null'], { cwd: dir, env: { GIT_PAGER: 'no-such-pager-xyz', GIT_ZOO_DEBUG: '' } })
    assert.equal(broken.code, 0)
    assert.equal(broken.stdout.split('\n').filter((l) => l.startsWith('p/m')).length, 30)
  } finally { await cleanup() }
})
