/**
 * Errors with a stable `code`, structured `data`, and a hint that says how to fix the problem.
 * The CLI maps each class to an exit code, per the command contract (the README's exit codes):
 *   UsageError -> 2, CheckError (policy / integrity) -> 1, anything else -> 3.
 * Every code, with its exit code, meaning and fix, is listed in spec/errors.md.
 */
export class ZooError extends Error {
  constructor(message: string, readonly code: string,
              readonly data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
  /** The process exit code the CLI uses for this error. */
  get exitCode(): number { return 3 }
}

/** Bad arguments, unknown flags, not in a repository: exit 2, nothing written. */
export class UsageError extends ZooError {
  override get exitCode(): number { return 2 }
}

/** A check failed or a policy refused (corrupt object, unsealed model, bad signature): exit 1. */
export class CheckError extends ZooError {
  override get exitCode(): number { return 1 }
}

/** Bytes that do not hash to the CID they are stored under. */
export class CorruptObjectError extends CheckError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`${message}; run \`git zoo verify\` to list every damaged object and \`git zoo verify --repair\` to replace them from a zoo remote`, 'E_CORRUPT_OBJECT', data, options)
  }
}

/** An object the caller asked for is not in the store. */
export class NotFoundError extends ZooError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, 'E_NOT_FOUND', data, options)
  }
  override get exitCode(): number { return 1 }
}

/** Input that is malformed (a manifest, a CBOR block, a file header). */
export class FormatError extends ZooError {}

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
  override get exitCode(): number { return this.signal === 'SIGTERM' ? 143 : 130 }
}

/** The InterruptedError behind `err` (itself or anywhere in its cause chain), if any. */
export function interruption(err: unknown): InterruptedError | undefined {
  for (let e = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof InterruptedError) return e
  }
  return undefined
}
