/**
 * Tensor-leak assertions. TensorFlow.js counts live tensors globally (`tf.memory().numTensors`); a
 * function that leaves more tensors alive than it found has leaked (unless it returns them on purpose).
 */
import * as tf from '@tensorflow/tfjs';

/** Thrown when code under test leaves tensors alive (or disposes tensors it did not own). */
export class TensorLeakError extends Error {
  /** Live tensors after minus before (positive: leaked; negative: disposed someone else's). */
  readonly difference: number;

  constructor(label: string, before: number, after: number) {
    const diff = after - before;
    const what =
      diff > 0
        ? `${diff} tensor${diff === 1 ? '' : 's'} leaked`
        : `${-diff} tensor${diff === -1 ? '' : 's'} more disposed than created`;
    super(
      `${label}: ${what} (tf.memory().numTensors was ${before} before and ${after} after, difference ${diff > 0 ? '+' : ''}${diff})\n` +
        '  hint: wrap the math in tf.tidy, dispose intermediate tensors, and dispose the results the test keeps',
    );
    this.name = 'TensorLeakError';
    this.difference = diff;
  }
}

export interface LeakCheckOptions {
  /** Names the checked code in the error message. Default: `code under test`. */
  readonly label?: string;
  /** Tensors `fn` may leave alive on purpose, e.g. the ones it returns. Default 0. */
  readonly expectedNewTensors?: number;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function check(before: number, options: LeakCheckOptions | undefined): void {
  const after = tf.memory().numTensors;
  const allowed = options?.expectedNewTensors ?? 0;
  if (after - before !== allowed) {
    throw new TensorLeakError(options?.label ?? 'code under test', before + allowed, after);
  }
}

/**
 * Runs `fn` and throws a `TensorLeakError` when the number of live tensors changed. Works with sync
 * and async functions: an async `fn` gives a Promise that rejects on a leak. Returns what `fn` returns.
 * When `fn` throws, its error propagates and no leak check is made.
 */
export function expectNoTensorLeaks<T>(fn: () => Promise<T>, options?: LeakCheckOptions): Promise<T>;
export function expectNoTensorLeaks<T>(fn: () => T, options?: LeakCheckOptions): T;
export function expectNoTensorLeaks<T>(fn: () => T | Promise<T>, options?: LeakCheckOptions): T | Promise<T> {
  const before = tf.memory().numTensors;
  const result = fn();
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then((value) => {
      check(before, options);
      return value as T;
    });
  }
  check(before, options);
  return result;
}

/**
 * Wraps a function (e.g. a test body) so that every call is leak-checked:
 * `it('scores', withLeakCheck(() => { ... }))`.
 */
export function withLeakCheck<A extends unknown[], R>(
  fn: (...args: A) => R,
  options?: LeakCheckOptions,
): (...args: A) => R {
  return (...args: A): R => expectNoTensorLeaks(() => fn(...args), options) as R;
}
