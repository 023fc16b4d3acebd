import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { beforeAll } from 'vitest';

/**
 * Registers a `beforeAll` that activates the compute backend `name` (default `wasm`) from core's
 * built-in backends. Call it at the top of a test file that computes with tensors. tfjs is a global
 * singleton: one backend per test process (vitest runs each file in its own worker).
 */
export function useTestBackend(name = 'wasm'): void {
  beforeAll(async () => {
    await initCompute({ registry: builtinBackendRegistry(), backend: name });
  });
}
