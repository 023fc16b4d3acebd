/**
 * The `native` compute backend: tfjs-wasm underneath (activated exactly as core's `wasm` backend),
 * with the hot kernels replaced by the AVX2/FMA addon. Priority 20, above wasm's 10, so it is the
 * default wherever the addon loads; core's initCompute falls back to wasm and says why otherwise.
 */
import {
  type ComputeBackend,
  ComputeBackend as ComputeBackendPoint,
  type ContainerModule,
  defineStrategy,
  strategyModule,
  wasmBackend,
} from '@quorum/core';
import { z } from 'zod';
import { type AddonLocation, loadAddon } from './addon.js';
import type { NativeGradientName } from './gradients.js';
import { installNativeKernels, type NativeKernelName, nativeStatus, resolveThreads } from './install.js';

export interface NativeBackendOptions {
  /** Threads for the native kernels. Default: QUORUM_THREADS, else 2. */
  readonly threads?: number | undefined;
  /** Which kernels to replace (default: DEFAULT_NATIVE_KERNELS). */
  readonly kernels?: readonly NativeKernelName[] | undefined;
  /** Which gradient functions to replace (default: all of NATIVE_GRADIENTS; [] for none). */
  readonly gradients?: readonly NativeGradientName[] | undefined;
  /** Matmul vector width, 512 (AVX-512) or 256 (AVX2). Default: the widest the CPU has. */
  readonly simd?: 256 | 512 | undefined;
  /** Where the addon is (tests inject a path). */
  readonly location?: AddonLocation | undefined;
  /** Environment to read QUORUM_THREADS from. Default: process.env. */
  readonly env?: Record<string, string | undefined> | undefined;
}

export function nativeBackend(options: NativeBackendOptions = {}): ComputeBackend {
  return {
    name: 'native',
    priority: 20,
    probe: async () => {
      const load = loadAddon(options.location);
      if (!load.ok) return { available: false, reason: load.reason, hint: load.hint };
      const wasm = await wasmBackend().probe();
      if (!wasm.available)
        return {
          available: false,
          reason: `it runs on tfjs-wasm, which is unavailable: ${wasm.reason}`,
          ...(wasm.hint === undefined ? {} : { hint: wasm.hint }),
        };
      return { available: true };
    },
    activate: async (tfjs) => {
      const threads = resolveThreads(options.threads, options.env);
      await wasmBackend().activate(tfjs);
      const kernels = installNativeKernels(tfjs, {
        threads,
        kernels: options.kernels,
        gradients: options.gradients,
        simd: options.simd,
        location: options.location,
        env: options.env,
      });
      const { gradients, simd } = nativeStatus(options.location);
      const isa = simd === 512 ? 'AVX2/FMA + AVX-512' : 'AVX2/FMA';
      return {
        threads,
        details:
          `tfjs-wasm with native ${isa} kernels (${threads} threads): ${kernels.join(', ')}` +
          (gradients.length > 0 ? `; gradients: ${gradients.join(', ')}` : ''),
        // The native sgemm packs either layout, so transposed operands cost nothing extra.
        fastTransposedMatMul: kernels.includes('BatchMatMul'),
      };
    },
  };
}

const nativeOptions = z
  .object({
    threads: z
      .number()
      .int()
      .min(1)
      .max(256)
      .optional()
      .describe('threads for the native kernels (default: QUORUM_THREADS, else 2)'),
  })
  .strict();

export const nativeBackendDefinition = defineStrategy({
  name: 'native',
  description:
    'tfjs-wasm with native AVX2/FMA kernels (AVX-512 where the CPU has it): matmul, elementwise, reductions, softmax, data movement, fused GELU, SiLU, LayerNorm, RMSNorm and AdamW; multi-threaded',
  source: '@quorum/kernels-native',
  options: nativeOptions,
  create: (opts) => nativeBackend({ threads: opts.threads }),
});

/** Contributes the `native` backend to core's ComputeBackend point. */
export function kernelsNativeModule(): ContainerModule {
  return strategyModule({
    strategies: [{ point: ComputeBackendPoint, definitions: [nativeBackendDefinition] }],
  });
}
