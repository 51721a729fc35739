/**
 * Run by hooks/pre-commit. Kept light: it imports the check module only, and that loads the
 * manifest code only when something under models/ is staged (spec/seal.md, "The hook").
 */
import type { Command } from '../command.js'
import { ZooError } from '../../errors.js'

export const command: Command = {
  summary: 'run by the pre-commit hook (internal)',
  help: `usage: git zoo hook-pre-commit [--json]

Run by the zoo's pre-commit hook (\`git zoo init\` installs it). Checks what is staged against HEAD
and refuses (exit 1) a commit that stages:
  - a raw weights file anywhere (safetensors, PyTorch zip or pickle, ONNX, GGUF, HDF5, numpy),
    recognised by its bytes whatever its name
  - a manifest that fails validation, does not match its seal, is not canonical, sits in the wrong
    folder, or fails .zoo/schema.json; a config snapshot that does not match its digest
  - any change to a sealed version (models/<name>/v<N>/ as committed in HEAD), README.md included;
    the one addition allowed is the RETIRED.json that \`git zoo retire\` writes
  - files under models/ outside a model version folder
  - a manifest whose objects are not all in the local store
Each refusal names the path and the command that fixes it.

flags:
  --json   print { ok, problems: [{ kind, path, model, problem, fix }] }

example:
  git add -A && git zoo hook-pre-commit   # what the hook would say about the next commit
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    // git starts before the check module loads (the hook's time is mostly start-up); args = STAGED_DIFF
    const { execFile } = await import('node:child_process')
    const diff = new Promise<string>((resolve, reject) => {
      execFile('git', ['diff', '--cached', '--raw', '-z', '--no-renames', '--no-abbrev', '--ignore-submodules=all'], { cwd: io.cwd, env: io.env, encoding: 'utf8', maxBuffer: 1 << 30 },
        (err, stdout, stderr) => (err ? reject(new ZooError(`git diff --cached failed: ${stderr.trim() || err.message}`, 'E_GIT', {}, { cause: err })) : resolve(stdout)))
    })
    diff.catch(() => { /* awaited below */ })
    const { checkStaged, formatRefusal } = await import('../../promote/precommit.js')
    const problems = await checkStaged(io.cwd, io.env, diff)
    if (args.flags.json === true) io.out(JSON.stringify({ ok: problems.length === 0, problems }, null, 2) + '\n')
    else if (problems.length) io.err(formatRefusal(problems))
    return problems.length ? 1 : 0
  },
}
