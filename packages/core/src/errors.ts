/**
 * Quorum's error types. Every error names where the problem is (a file and line, an option path, a
 * strategy name) and how to fix it, so a user never has to read a stack trace to act.
 */

/** Where in a user's input a problem was found. All parts are optional; the message shows those set. */
export interface ErrorLocation {
  /** File path as the user gave it. */
  readonly file?: string;
  /** 1-based line number in `file`. */
  readonly line?: number;
  /** Field or option path, e.g. `preference` or `train.lr`. */
  readonly field?: string;
}

export interface QuorumErrorOptions {
  readonly code: string;
  readonly location?: ErrorLocation;
  /** One sentence telling the user what to do. */
  readonly hint?: string;
  readonly cause?: unknown;
}

/** Formats a location as `file:line (field)`, omitting the parts that are not set. */
export function formatLocation(loc: ErrorLocation | undefined): string {
  if (loc === undefined) return '';
  let out = loc.file ?? '';
  if (loc.line !== undefined) out += out === '' ? `line ${loc.line}` : `:${loc.line}`;
  if (loc.field !== undefined) out += out === '' ? `field "${loc.field}"` : ` field "${loc.field}"`;
  return out;
}

/** Base class of every error Quorum throws on purpose. */
export class QuorumError extends Error {
  readonly code: string;
  readonly location: ErrorLocation | undefined;
  readonly hint: string | undefined;

  constructor(message: string, options: QuorumErrorOptions) {
    const where = formatLocation(options.location);
    const full = `${where === '' ? '' : `${where}: `}${message}${options.hint === undefined ? '' : `\n  hint: ${options.hint}`}`;
    super(full, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.location = options.location;
    this.hint = options.hint;
  }
}

/** A config value or option is invalid. `location.field` holds the option path. */
export class ConfigError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_CONFIG', ...options });
  }
}

/** A row of a data file is malformed. `location` holds file, line and field. */
export class DataError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_DATA', ...options });
  }
}

/** A checkpoint is missing, truncated, corrupted or belongs to another config. `location.file` names it. */
export class CheckpointError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_CHECKPOINT', ...options });
  }
}

/** A strategy name is unknown or registered twice. */
export class RegistryError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_REGISTRY', ...options });
  }
}

/** A compute backend cannot be used (missing package, failed activation). */
export class BackendError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_BACKEND', ...options });
  }
}

/** Training produced a non-finite loss or gradient. */
export class NumericalError extends QuorumError {
  constructor(message: string, options: Omit<QuorumErrorOptions, 'code'> & { code?: string }) {
    super(message, { code: 'E_NUMERICAL', ...options });
  }
}
