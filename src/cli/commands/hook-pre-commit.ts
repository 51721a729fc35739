/**
 * Run by hooks/pre-commit. Kept light: it imports the check module only, and that loads the
 * manifest code only when something under models/ is staged (spec/seal.md, "The hook").
 */
import type { Command } from '../command.js'
import { crashPoints } from '../crash.js'

export const command: Command = {
  help: `usage: git zoo hook-pre-commit [--json]

Run by the zoo's pre-commit hook (\`git zoo init\` installs it). Checks what is staged against HEAD
and refuses (exit 1) a commit that stages:
  - a raw weights file anywhere (safetensors, PyTorch zip or pickle, ONNX, GGUF, HDF5, numpy),
    recognised by its bytes whatever its name
  - any other file outside models/ and .zoo/ larger than policy.max_blob_bytes in .zoo/config.json
    (default 10 MiB), whatever its bytes: the fix is \`git zoo add\`
  - a manifest that fails validation, does not match its seal, is not canonical, sits in the wrong
    folder, or fails .zoo/schema.json; a config snapshot that does not match its digest
  - any change to a sealed version (models/<name>/v<N>/ as committed in HEAD), README.md included;
    the additions allowed are the RETIRED.json that \`git zoo retire\` writes and the evaluation
    records (evals/<data-sha256>.json) that \`git zoo eval\` writes, each checked against the
    sealed manifest (a retirement of exactly its seal; a record naming its seal and file)
  - files under models/ outside a model version folder
  - a manifest whose objects are not all in the local store
Each refusal names the path and the command that fixes it. While a merge or rebase is in progress
(a git pull that stopped on two promotions of one name@vN), the fix named for problems under
models/ is \`git zoo pull --continue\`.

flags:
  --json   print { ok, problems: [{ kind, path, model, problem, fix }] }

example:
  git add -A && git zoo hook-pre-commit   # what the hook would say about the next commit
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    await crashPoints(io)('hook-pre-commit')
    // The usual commit stages no weights and nothing under models/: answer it with one git run
    // and the light half of the check (the hook's time is mostly start-up, spec/seal.md).
    const [{ runGitSync, gitFailed }, { parseRawDiff, sniffable, workTreeHead, STAGED_DIFF }] = await Promise.all([import('../../git/git.js'), import('../../promote/staged.js')])
    const r = runGitSync(io.cwd, STAGED_DIFF, { env: io.env })
    if (r.code !== 0) throw gitFailed(STAGED_DIFF, r)
    const json = args.flags.json === true
    const changes = parseRawDiff(r.stdout)
    const passed = (): number => { if (json) io.out(JSON.stringify({ ok: true, problems: [] }, null, 2) + '\n'); return 0 }
    if (!changes.some((c) => c.path.startsWith('models/'))) {
      const blobs = changes.filter(sniffable)
      if (blobs.length === 0) return passed()
      const [{ isWeightsFile, SNIFF_BYTES }, { createHash }, { readFileSync, lstatSync }, { maxBlobBytes, isZooPath }] = await Promise.all([import('../../formats/sniff.js'), import('node:crypto'), import('node:fs'), import('../../promote/staged.js')])
      let config: string | null = null
      try { config = readFileSync(`${io.cwd}/.zoo/config.json`, 'utf8') } catch { /* no config: the default limit */ }
      const max = maxBlobBytes(config)
      const clean = blobs.every((c) => {
        const head = workTreeHead(io.cwd, c, SNIFF_BYTES, createHash, readFileSync, lstatSync)
        return head !== null && !isWeightsFile(head.bytes, head.size) && (isZooPath(c.path) || head.size <= max)
      })
      if (clean) return passed()
    }
    // weights, something under models/, or a staged blob the work tree does not hold: the full check
    const { checkStaged, formatRefusal } = await import('../../promote/precommit.js')
    const problems = await checkStaged(io.cwd, io, r.stdout)
    if (json) io.out(JSON.stringify({ ok: problems.length === 0, problems }, null, 2) + '\n')
    else if (problems.length) io.err(formatRefusal(problems))
    return problems.length ? 1 : 0
  },
}
