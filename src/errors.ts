/**
 * Errors with a stable `code`, structured `data`, and a message that says how to fix the problem.
 *
 * The exit status is a property of the code: ERROR_CODES below is the one table the CLI uses
 * (../shared CLI contract): 1 a check failed or a policy refused, 2 a usage error, 3 an operational
 * error or malformed input. Every code thrown anywhere must be a key of this table (the compiler
 * checks it: `code` is typed ErrorCode), and each class only takes codes of its own exit status
 * (UsageError takes exit-2 codes, CheckError exit-1 codes, FormatError exit-3 codes), so a class
 * and its code cannot disagree. spec/errors.md documents every code; test/errors-contract.test.ts
 * keeps the two in step.
 */

/** The exit status of each error code. */
export const ERROR_CODES = {
  // usage (2): arguments, names, files the user named
  E_USAGE: 2,
  E_NOT_A_REPO: 2,
  E_BAD_NAME: 2,
  E_UNKNOWN_MODEL: 2,
  E_NO_FILE: 2,
  E_NOT_EMPTY: 2,
  E_NO_IDENTITY: 2,
  E_METRICS: 2,
  E_CDC_PARAMS: 2,
  E_PORT_IN_USE: 2,
  // import (2)
  E_NO_MODELS: 2,
  E_NO_PARENT: 2,
  E_IMPORT_CYCLE: 2,
  E_RUN_CONFIG: 2,
  // signing set-up and code elsewhere (2): spec/seal.md, spec/cli.md
  E_NO_SIGNING_KEY: 2,
  E_CODE_REPO: 2,
  // remotes: configuration (2)
  E_BAD_URL: 2,
  E_CREDENTIALS_IN_URL: 2,
  E_UNKNOWN_ZOO_REMOTE: 2,
  E_AMBIGUOUS_ZOO_REMOTE: 2,
  // retention and remote gc (2)
  E_NO_GIT_REMOTE: 2,
  // pull: integrating promotions (2)
  E_PULL_NOTHING: 2,
  E_PULL_NO_STATE: 2,
  E_PULL_NO_UPSTREAM: 2,
  // evaluation and soups (2)
  E_NO_ONNX: 2,
  E_EVAL_INPUT: 2,
  E_EVAL_OUTPUT: 2,
  E_BAD_DATA: 2,
  E_SOUP_FORMAT: 2,
  E_SOUP_INCOMPATIBLE: 2,
  E_SOUP_DTYPE: 2,
  // weight-space export (2)
  E_EXPORT_INCOMPATIBLE: 2,
  E_EXPORT_EPOCHS: 2,

  // checks and policy (1)
  E_CORRUPT_OBJECT: 1,
  E_NOT_FOUND: 1,
  E_SEAL_MISMATCH: 1,
  E_LINEAGE_CYCLE: 1,
  E_GC_UNSAFE: 1,
  E_SYMLINK: 1,
  E_DIRTY: 1,
  E_UNSIGNED: 1,
  E_SCHEMA: 1,
  E_COMMIT_REFUSED: 1,
  E_ALREADY_RETIRED: 1,
  E_ALL_RETIRED: 1,
  E_HOOK_CONFLICT: 1,
  E_NO_ZOO_REMOTE: 1,
  E_REMOTE_TOO_LARGE: 1,
  E_REDIRECT_REFUSED: 1,
  E_ONNX_EXTERNAL: 1,
  // push and pull: integrating promotions (1)
  E_PUSH_NOT_FAST_FORWARD: 1,
  E_PULL_DIVERGED: 1,
  E_PULL_DIRTY: 1,
  E_PULL_IN_PROGRESS: 1,
  E_PULL_STOPPED: 1,
  E_PULL_CONFLICT: 1,
  E_COMMITTED_MEANWHILE: 1,
  // torch checkpoints (1)
  E_TORCH_REFUSED: 1,
  // stages, malformed files (1)
  E_RETIRED_STAGE: 1,
  E_MALFORMED: 1,

  // operational (3): git, the store, remotes, configuration files
  E_GIT: 3,
  E_GIT_MISSING: 3,
  E_CONFIG: 3,
  E_LOCKED: 3,
  E_REMOTE_LOCKED: 3,
  E_REMOTE_MISSING: 3,
  E_OBJECT_UNAVAILABLE: 3,
  E_TOO_LARGE: 3,
  E_FILE_CHANGED: 3,
  E_SHORT_READ: 3,
  E_CATALOG: 3,
  E_BAD_CONCURRENCY: 3,
  E_TRANSFER: 3,
  E_READ_ONLY: 3,
  E_UNSUPPORTED: 3,
  E_REMOTE_AUTH: 3,
  E_REMOTE_HTTP: 3,
  E_REMOTE_IO: 3,
  E_INJECTED: 3,
  E_ORT_MISSING: 3,
  E_ORT_LOAD: 3,
  E_UI_NOT_BUILT: 3,
  E_DISK_FULL: 3,
  E_COMMIT_LOCKED: 3,
  E_REMOTE_LAYOUT: 3,
  E_HISTORY_UNAVAILABLE: 3,

  // malformed input (3): manifests, blocks, CIDs, file formats
  E_MANIFEST: 3,
  E_BAD_PATH: 3,
  E_BAD_CID: 3,
  E_NODE: 3,
  E_CBOR_ENCODE: 3,
  E_CBOR_DECODE: 3,
  E_CBOR_SIZE: 3,
  E_CBOR_NONCANONICAL: 3,
  E_SEGMENTS: 3,
  E_RETIREMENT: 3,
  E_EVAL_RECORD: 3,
  E_SAFETENSORS: 3,
  E_NOT_TENSORS: 3,
  E_NPY: 3,
  E_ZIP: 3,
  E_ZIP_PATH: 3,
  E_GGUF: 3,
  E_ONNX: 3,
  E_PROTOBUF: 3,
  E_TORCH_PICKLE: 3,

  // interrupted (130; 143 for SIGTERM): spec/teams.md, "Interruptions"
  E_INTERRUPTED: 130,

  // the CLI's own (spec/cli.md): in `--json` failures; a failed system call (3), a bug (70)
  E_IO: 3,
  E_SIGNING_SETUP: 3,
  E_INTERNAL: 70,
} as const satisfies Record<`E_${string}`, ExitStatus>

/**
 * 130 and 143: stopped by SIGINT / SIGTERM, as shells report it (E_INTERRUPTED; InterruptedError).
 * 70: an internal error, a bug (E_INTERNAL; only the CLI's last resort uses it).
 */
export type ExitStatus = 1 | 2 | 3 | 70 | 130 | 143
export type ErrorCode = keyof typeof ERROR_CODES
/** The codes whose exit status is `N`. */
export type CodeWithExit<N extends ExitStatus> = { [K in ErrorCode]: (typeof ERROR_CODES)[K] extends N ? K : never }[ErrorCode]

export class ZooError extends Error {
  constructor(message: string, readonly code: ErrorCode,
              readonly data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
  /** The process exit status the CLI uses for this error: its code's row in ERROR_CODES. */
  get exitCode(): ExitStatus { return ERROR_CODES[this.code] }
}

/** Bad arguments, unknown flags, not in a repository, a model name that is not in the zoo: exit 2. */
export class UsageError extends ZooError {
  declare readonly code: CodeWithExit<2>
  constructor(message: string, code: CodeWithExit<2>, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, data, options)
  }
}

/** A check failed or a policy refused (corrupt object, unsealed model, bad signature): exit 1. */
export class CheckError extends ZooError {
  declare readonly code: CodeWithExit<1>
  constructor(message: string, code: CodeWithExit<1>, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, data, options)
  }
}

/** Bytes that do not hash to the CID they are stored under. */
export class CorruptObjectError extends CheckError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`${message}; run \`git zoo verify\` to list every damaged object and \`git zoo verify --repair\` to replace them from a zoo remote`, 'E_CORRUPT_OBJECT', data, options)
  }
}

/** An object the caller asked for is not in a store: exit 1 (a check of what the zoo holds failed). */
export class NotFoundError extends CheckError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, 'E_NOT_FOUND', data, options)
  }
}

/** A model name, version or seal the user typed that this zoo does not have: a usage error, exit 2. */
export class UnknownModelError extends UsageError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, 'E_UNKNOWN_MODEL', data, options)
  }
}

/** Input that is malformed (a manifest, a CBOR block, a file header): exit 3. */
export class FormatError extends ZooError {
  declare readonly code: CodeWithExit<3>
  constructor(message: string, code: CodeWithExit<3>, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, data, options)
  }
}

/**
 * `err` as E_DISK_FULL when it is the operating system saying the disk is full (ENOSPC, or EDQUOT:
 * over quota), naming `where` (the store, the output folder): a write error has no path of its own
 * (it is a write to an open file). Any other error is returned as it is.
 */
export function diskFull(err: unknown, where: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err
  return new ZooError(`no space left on the disk holding ${where} (${code}); nothing half-written was kept under a final name: free space there and run the same command again`,
    'E_DISK_FULL', { path: where, errno: code }, { cause: err })
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * The command was stopped by SIGINT (Ctrl-C) or SIGTERM. The CLI installs the handlers and aborts
 * the commands' AbortSignal with one of these as its reason; domain code throws it from
 * `signal.throwIfAborted()`. Exit 130 for SIGINT and 143 for SIGTERM, as shells report them.
 */
export class InterruptedError extends ZooError {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`, 'E_INTERRUPTED', { signal })
  }
  override get exitCode(): ExitStatus { return this.signal === 'SIGTERM' ? 143 : 130 }
}

/** The InterruptedError behind `err` (itself or anywhere in its cause chain), if any. */
export function interruption(err: unknown): InterruptedError | undefined {
  for (let e = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof InterruptedError) return e
  }
  return undefined
}
