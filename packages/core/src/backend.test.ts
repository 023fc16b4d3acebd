import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  builtinBackendRegistry,
  type ComputeBackend,
  ComputeBackend as ComputeBackendPoint,
  initCompute,
  resetComputeForTests,
  TENSORFLOW_INSTALL_HINT,
  tensorflowBackend,
} from './backend.js';
import { BackendError } from './errors.js';
import { defineStrategy, StrategyRegistry } from './registry.js';

afterEach(() => resetComputeForTests());

describe('compute backends', () => {
  it('activates wasm by default and can train an embedding (UnsortedSegmentSum registered)', async () => {
    const active = await initCompute({ registry: builtinBackendRegistry(), env: {} });
    expect(active.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(active.reason).toMatch(/highest-priority/);
    const before = tf.memory().numTensors;
    const table = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const ids = tf.tensor1d([2, 0, 2], 'int32');
    const grad = tf.grad((t: tf.Tensor) => tf.gather(t, ids).sum())(table);
    expect(Array.from(grad.dataSync())).toEqual([1, 1, 0, 0, 2, 2]);
    tf.dispose([table, ids, grad]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('honours QUORUM_BACKEND and refuses to switch later in the process', async () => {
    const active = await initCompute({ registry: builtinBackendRegistry(), env: { QUORUM_BACKEND: 'cpu' } });
    expect(active).toMatchObject({ name: 'cpu', reason: 'requested by QUORUM_BACKEND' });
    await expect(initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' })).rejects.toThrow(
      /already active/,
    );
    await tf.setBackend('wasm');
  });

  it('names the package to install when tensorflow is asked for and missing', async () => {
    const registry = new StrategyRegistry<ComputeBackend>(ComputeBackendPoint);
    registry.register(
      defineStrategy({
        name: 'tensorflow',
        description: 'test double with an importer that finds nothing',
        source: 'test',
        options: z.object({}).strict(),
        create: () =>
          tensorflowBackend(async (spec) => {
            throw new Error(`Cannot find package '${spec}'`);
          }),
      }),
    );
    const attempt = initCompute({ registry, backend: 'tensorflow' });
    await expect(attempt).rejects.toThrow(BackendError);
    resetComputeForTests();
    await expect(initCompute({ registry, backend: 'tensorflow' })).rejects.toThrow(
      /npm install @tensorflow\/tfjs-node[\s\S]*npm install @tensorflow\/tfjs-node-gpu/,
    );
    expect(TENSORFLOW_INSTALL_HINT).toMatch(/tfjs-node-gpu/);
  });

  it('rejects an unknown backend name, listing the registered ones', async () => {
    await expect(initCompute({ registry: builtinBackendRegistry(), backend: 'cuda' })).rejects.toThrow(
      /unknown compute backend "cuda"\. Registered: wasm, cpu, tensorflow/,
    );
  });

  it('falls back to the next backend and says why', async () => {
    const registry = builtinBackendRegistry();
    registry.register(
      defineStrategy({
        name: 'fancy',
        description: 'a faster backend that cannot load here',
        source: 'test',
        options: z.object({}).strict(),
        create: (): ComputeBackend => ({
          name: 'fancy',
          priority: 99,
          probe: async () => ({ available: false, reason: 'addon not built (no compiler)' }),
          activate: async () => ({ threads: 2 }),
        }),
      }),
    );
    const warnings: string[] = [];
    const active = await initCompute({ registry, env: {}, warn: (m) => warnings.push(m) });
    expect(active.name).toBe('wasm');
    expect(active.reason).toMatch(/fancy: addon not built \(no compiler\)/);
    expect(warnings).toHaveLength(1);
  });
});
