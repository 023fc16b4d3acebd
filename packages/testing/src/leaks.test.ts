import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { useTestBackend } from './backend.js';
import { expectNoTensorLeaks, TensorLeakError, withLeakCheck } from './leaks.js';

useTestBackend();

describe('expectNoTensorLeaks', () => {
  it('passes on a clean sync function and returns its value', () => {
    const value = expectNoTensorLeaks(() =>
      tf.tidy(() =>
        tf
          .add(tf.ones([3]), 1)
          .sum()
          .arraySync(),
      ),
    );
    expect(value).toBe(6);
  });

  it('fails on a leaking sync function with the difference in the message', () => {
    const leaked: tf.Tensor[] = [];
    let error: unknown;
    try {
      expectNoTensorLeaks(
        () => {
          leaked.push(tf.ones([2]), tf.zeros([2]));
        },
        { label: 'leaky' },
      );
    } catch (e) {
      error = e;
    }
    tf.dispose(leaked);
    expect(error).toBeInstanceOf(TensorLeakError);
    expect((error as TensorLeakError).difference).toBe(2);
    expect((error as Error).message).toMatch(/^leaky: 2 tensors leaked/);
    expect((error as Error).message).toMatch(/difference \+2/);
  });

  it('fails when a function disposes a tensor it did not create', () => {
    const outside = tf.ones([2]);
    expect(() => expectNoTensorLeaks(() => outside.dispose())).toThrow(/1 tensor more disposed than created/);
  });

  it('passes on a clean async function', async () => {
    const value = await expectNoTensorLeaks(async () => {
      const t = tf.ones([4]);
      const data = await t.data();
      t.dispose();
      return data.length;
    });
    expect(value).toBe(4);
  });

  it('fails on a leaking async function', async () => {
    let leaked: tf.Tensor | undefined;
    await expect(
      expectNoTensorLeaks(async () => {
        await Promise.resolve();
        leaked = tf.ones([1]);
      }),
    ).rejects.toThrow(/1 tensor leaked/);
    leaked?.dispose();
  });

  it('allows tensors returned on purpose with expectedNewTensors', () => {
    const t = expectNoTensorLeaks(() => tf.ones([2]), { expectedNewTensors: 1 });
    t.dispose();
    expect(() => expectNoTensorLeaks(() => undefined, { expectedNewTensors: 1 })).toThrow(TensorLeakError);
  });

  it('lets the function’s own error through', () => {
    expect(() =>
      expectNoTensorLeaks(() => {
        throw new RangeError('boom');
      }),
    ).toThrow(RangeError);
  });
});

describe('withLeakCheck', () => {
  it('wraps a function with arguments', () => {
    const sumOf = withLeakCheck((n: number) => tf.tidy(() => tf.ones([n]).sum().arraySync() as number));
    expect(sumOf(5)).toBe(5);
    const kept: tf.Tensor[] = [];
    const leaky = withLeakCheck((n: number) => {
      kept.push(tf.ones([n]));
    });
    expect(() => leaky(3)).toThrow(TensorLeakError);
    tf.dispose(kept);
  });
});
