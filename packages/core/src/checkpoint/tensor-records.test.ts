import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import { f32ArrayToBf16, f32ArrayToF16, type TensorRecord } from './dtypes.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { recordsToTensors, tensorsToRecords } from './tensor-records.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

function disposeAll(tensors: Record<string, tf.Tensor>): void {
  for (const t of Object.values(tensors)) t.dispose();
}

describe('tensors ↔ records', () => {
  it('round-trips float32, int32 and bool tensors through safetensors bytes without leaks', async () => {
    const before = tf.memory().numTensors;
    const original = {
      wte: tf.tensor2d([
        [1.5, -2],
        [0.25, 3e-8],
      ]),
      ids: tf.tensor1d([-5, 0, 2147483647], 'int32'),
      mask: tf.tensor1d([true, false, true], 'bool'),
      scalar: tf.scalar(7),
    };
    const records = await tensorsToRecords(original);
    expect(records.wte).toEqual({
      dtype: 'F32',
      shape: [2, 2],
      data: new Float32Array([1.5, -2, 0.25, 3e-8]),
    });
    expect(records.ids.dtype).toBe('I32');
    expect(records.mask).toEqual({ dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) });
    expect(records.scalar.shape).toEqual([]);

    const back = recordsToTensors(decodeSafetensors(encodeSafetensors(records)).tensors);
    for (const [name, t] of Object.entries(original)) {
      expect(back[name].dtype, name).toBe(t.dtype);
      expect(back[name].shape, name).toEqual(t.shape);
      expect(await back[name].data(), name).toEqual(await t.data());
    }
    disposeAll(original);
    disposeAll(back);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('copies values out: changing a record never changes a tensor', async () => {
    const before = tf.memory().numTensors;
    const t = tf.tensor1d([1, 2, 3]);
    const records = await tensorsToRecords({ t });
    (records.t.data as Float32Array)[0] = 99;
    expect(await t.data()).toEqual(new Float32Array([1, 2, 3]));
    const made = recordsToTensors(records);
    (records.t.data as Float32Array)[1] = 99;
    expect(await made.t.data()).toEqual(new Float32Array([99, 2, 3]));
    t.dispose();
    disposeAll(made);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('widens F16, BF16, F64 to float32 and small integers and I64 to int32', async () => {
    const before = tf.memory().numTensors;
    const records: Record<string, TensorRecord> = {
      h: { dtype: 'F16', shape: [3], data: f32ArrayToF16([0.5, -2, Number.POSITIVE_INFINITY]) },
      b: { dtype: 'BF16', shape: [2], data: f32ArrayToBf16([1.5, -3]) },
      d: { dtype: 'F64', shape: [1], data: new Float64Array([0.1]) },
      l: { dtype: 'I64', shape: [2], data: new BigInt64Array([-2147483648n, 2147483647n]) },
      s: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
      c: { dtype: 'I8', shape: [1], data: new Int8Array([-3]) },
      u: { dtype: 'U8', shape: [1], data: new Uint8Array([200]) },
    };
    const t = recordsToTensors(records);
    expect(t.h.dtype).toBe('float32');
    expect(await t.h.data()).toEqual(new Float32Array([0.5, -2, Number.POSITIVE_INFINITY]));
    expect(await t.b.data()).toEqual(new Float32Array([1.5, -3]));
    expect(await t.d.data()).toEqual(new Float32Array([0.1]));
    expect(t.l.dtype).toBe('int32');
    expect(await t.l.data()).toEqual(new Int32Array([-2147483648, 2147483647]));
    expect(await t.s.data()).toEqual(new Int32Array([-300]));
    expect(await t.c.data()).toEqual(new Int32Array([-3]));
    expect(await t.u.data()).toEqual(new Int32Array([200]));
    disposeAll(t);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects I64 values outside int32, naming file and tensor, and leaks nothing', () => {
    const before = tf.memory().numTensors;
    const records: Record<string, TensorRecord> = {
      a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      z: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n ** 40n]) },
    };
    expect(() => recordsToTensors(records, 'state.safetensors')).toThrow(
      /state.safetensors field "z": tensor 'z' is I64 and element 1 is 1099511627776, outside the int32 range/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a record whose data length does not match its shape', () => {
    const records: Record<string, TensorRecord> = {
      w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) },
    };
    expect(() => recordsToTensors(records)).toThrow(CheckpointError);
    expect(() => recordsToTensors(records)).toThrow(
      /tensor 'w' needs 4 elements \(F32 \[2, 2\]\) but its data has 3/,
    );
  });

  it('refuses tensor dtypes safetensors checkpoints do not hold', async () => {
    const before = tf.memory().numTensors;
    const c = tf.complex([1], [2]);
    await expect(tensorsToRecords({ c })).rejects.toThrow(/tensor 'c' has dtype complex64/);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
