// The way out of the process frees what TensorFlow.js holds.
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { releaseCompute } from './exit.js';

describe('releaseCompute', () => {
  it('does nothing before a backend is active', () => {
    expect(() => releaseCompute()).not.toThrow();
  });

  it('disposes every variable and tensor and resets the backend', async () => {
    process.env.QUORUM_QUIET = '1';
    await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
    tf.variable(tf.zeros([4, 4]), true, 'leaked-weight');
    tf.ones([16]);
    expect(tf.engine().state.numTensors).toBeGreaterThanOrEqual(2);
    expect(Object.keys(tf.engine().state.registeredVariables)).toContain('leaked-weight');
    releaseCompute();
    expect(tf.engine().state.numTensors).toBe(0);
    expect(tf.engine().state.registeredVariables).toEqual({});
    expect(() => releaseCompute()).not.toThrow();
  });
});
