/**
 * Installs the native kernels on the tfjs `wasm` backend (tf.unregisterKernel + tf.registerKernel),
 * keeping each stock kernel for fallback inside the override and for `uninstallNativeKernels()`.
 * The fused kernels (NATIVE_FUSED_KERNELS: names of @quorum/core's FUSED_KERNELS, not stock tfjs
 * kernels) are registered while installed and unregistered by `uninstallNativeKernels()`.
 */
import { BackendError, FUSED_KERNELS } from '@quorum/core';
import type * as tf from '@tensorflow/tfjs';
import {
  type AddonLocation,
  type BuildStatus,
  type CpuFeatures,
  defaultAddonPath,
  loadAddon,
  type NativeAddon,
  readBuildStatus,
} from './addon.js';
import {
  BINARY_OPS,
  binaryKernel,
  maxKernel,
  reduceKernel,
  softmaxKernel,
  UNARY_OPS,
  unaryKernel,
} from './elementwise.js';
import { fusedKernel, isFusedKernel, NATIVE_FUSED_KERNELS } from './fused.js';
import { gradientNeeds, NATIVE_GRADIENTS, type NativeGradientName, nativeGradient } from './gradients.js';
import { batchMatMulKernel, fusedMatMulKernel } from './matmul.js';
import {
  castKernel,
  gatherKernel,
  identityKernel,
  segmentSumKernel,
  sliceKernel,
  tileKernel,
  transposeKernel,
} from './movement.js';

type Tfjs = typeof tf;
type Fallback = (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | tf.TensorInfo[];

/** Every kernel this package can replace. */
export const NATIVE_KERNELS = [
  'BatchMatMul',
  '_FusedMatMul',
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'Maximum',
  'Exp',
  'Tanh',
  'Square',
  'Sqrt',
  'Rsqrt',
  'Neg',
  'Sum',
  'Mean',
  'Max',
  'Softmax',
  'Identity',
  'Cast',
  'Transpose',
  'Slice',
  'Tile',
  'GatherV2',
  'UnsortedSegmentSum',
  // fused kernels (not in stock tfjs; see fused.ts)
  ...NATIVE_FUSED_KERNELS,
] as const;
export type NativeKernelName = (typeof NATIVE_KERNELS)[number];

/**
 * Installed by default: every kernel. Each one beats its stock wasm kernel where it runs natively and
 * hands the other cases to the stock kernel (bench/kernels.mjs, quiet 2-core Zen 5, and the training
 * step A/B of bench/compare-step.mjs): matmuls 9-220x, Maximum with a broadcast ~650x, Tile ~500x,
 * GatherV2 ~300x, Sum ~120x, Identity/Cast no copy at all, Exp/Tanh 20-30x, Slice 15x, Max/Mean
 * 10-15x, UnsortedSegmentSum 14x, Sqrt ~10x, Softmax 3.4x, RealDiv 2.4x, Transpose 2.2x,
 * Add/Sub/Multiply 1.3-2x (flat runs only with 2+ threads and 128k+ elements). The fused GELU, SiLU,
 * LayerNorm and RMSNorm kernels (forward and backward) and the AdamW update replace a chain of stock ops in
 * a model that asks for them (@quorum/core's hasFusedKernel); see the README for their figures.
 */
export const DEFAULT_NATIVE_KERNELS: readonly NativeKernelName[] = NATIVE_KERNELS;

const BACKEND = 'wasm';

export interface NativeKernelOptions {
  /** Threads for the native kernels. Default: QUORUM_THREADS, else 2. */
  readonly threads?: number | undefined;
  /** Which kernels to replace. Default: DEFAULT_NATIVE_KERNELS. */
  readonly kernels?: readonly NativeKernelName[] | undefined;
  /**
   * Which gradient functions to replace (see gradients.ts); each only together with the native kernel
   * it relies on (`Mean`: `Tile`). Default: all of NATIVE_GRADIENTS; [] for none.
   */
  readonly gradients?: readonly NativeGradientName[] | undefined;
  /**
   * Vector width of the matmul, exp, tanh, softmax and fused (GELU, SiLU, LayerNorm, RMSNorm, AdamW) kernels: 512
   * (AVX-512) or 256 (AVX2). Default: 512 where the CPU has AVX-512F, else 256; 512 on a CPU without
   * it gives 256.
   */
  readonly simd?: 256 | 512 | undefined;
  /** Where the addon is (tests inject a path). */
  readonly location?: AddonLocation | undefined;
  /** Environment to read QUORUM_THREADS from. Default: process.env. */
  readonly env?: Record<string, string | undefined> | undefined;
}

interface Installed {
  /** Each replaced kernel's previous registration (undefined: none, a fused kernel). */
  readonly originals: Map<NativeKernelName, tf.KernelConfig | undefined>;
  readonly originalGradients: Map<NativeGradientName, tf.GradConfig>;
  readonly threads: number;
  readonly simd: number;
  readonly addon: NativeAddon;
}

let installed: Installed | undefined;

/** Threads from the option, else QUORUM_THREADS, else 2. Throws on a value that is not an integer in 1..256. */
export function resolveThreads(
  threads: number | undefined,
  env: Record<string, string | undefined> = process.env,
): number {
  if (threads !== undefined) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new BackendError(`threads must be an integer between 1 and 256, got ${threads}`, {
        location: { field: 'threads' },
        hint: 'set threads to the number of cores to use, e.g. 2',
      });
    }
    return threads;
  }
  const raw = env.QUORUM_THREADS;
  if (raw === undefined || raw === '') return 2;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new BackendError(`QUORUM_THREADS must be an integer between 1 and 256, got "${raw}"`, {
      location: { field: 'QUORUM_THREADS' },
      hint: 'unset QUORUM_THREADS or set it to the number of cores to use, e.g. 2',
    });
  }
  return n;
}

/**
 * Memory-bound ops (add, multiply, square, …) on one flat run: the stock single-threaded SIMD loop is
 * as fast as one native thread, so the native kernel takes them only when several threads share a
 * run at least this long (measured: 2 threads 1.3-1.4x stock on 2M floats, no gain below ~100k).
 */
const FLAT_PARALLEL_MIN = 1 << 17;

function makeKernel(
  name: NativeKernelName,
  addon: NativeAddon,
  fallback: Fallback,
  threads: number,
): tf.KernelFunc {
  const flatMin = threads > 1 ? FLAT_PARALLEL_MIN : Number.POSITIVE_INFINITY;
  switch (name) {
    case 'BatchMatMul':
      return batchMatMulKernel(addon, fallback);
    case '_FusedMatMul':
      return fusedMatMulKernel(addon, fallback);
    case 'Add':
    case 'Sub':
    case 'Multiply':
      return binaryKernel(addon, BINARY_OPS[name] as number, fallback, flatMin);
    case 'RealDiv': // the stock division is slower than the native one at every size
    case 'Maximum':
      return binaryKernel(addon, BINARY_OPS[name] as number, fallback);
    case 'Exp': // compute-bound, or (Sqrt, Rsqrt) the stock loop is scalar: native everywhere
    case 'Tanh':
    case 'Sqrt':
    case 'Rsqrt':
      return unaryKernel(addon, UNARY_OPS[name] as number, fallback);
    case 'Square':
    case 'Neg':
      return unaryKernel(addon, UNARY_OPS[name] as number, fallback, flatMin);
    case 'Sum':
      return reduceKernel(addon, false, fallback);
    case 'Mean':
      return reduceKernel(addon, true, fallback);
    case 'Max':
      return maxKernel(addon, fallback);
    case 'Softmax':
      return softmaxKernel(addon, fallback);
    case 'Identity':
      return identityKernel(fallback);
    case 'Cast':
      return castKernel(fallback);
    case 'Transpose':
      return transposeKernel(addon, fallback);
    case 'Slice':
      return sliceKernel(addon, fallback);
    case 'Tile':
      return tileKernel(addon, fallback);
    case 'GatherV2':
      return gatherKernel(addon, fallback);
    case 'UnsortedSegmentSum':
      return segmentSumKernel(addon, fallback);
    case FUSED_KERNELS.gelu:
    case FUSED_KERNELS.geluGrad:
    case FUSED_KERNELS.layerNorm:
    case FUSED_KERNELS.layerNormGrad:
    case FUSED_KERNELS.silu:
    case FUSED_KERNELS.siluGrad:
    case FUSED_KERNELS.rmsNorm:
    case FUSED_KERNELS.rmsNormGrad:
    case FUSED_KERNELS.adamW:
      return fusedKernel(name, addon);
  }
}

/**
 * Replaces the chosen wasm kernels with native ones (re-installing when already installed). The
 * wasm backend's kernels must be registered (import @tensorflow/tfjs-backend-wasm, e.g. through
 * core's `wasmBackend().activate(tf)`). Throws BackendError when the addon cannot be used.
 * Returns the names of the replaced kernels.
 */
export function installNativeKernels(tfjs: Tfjs, options: NativeKernelOptions = {}): NativeKernelName[] {
  const threads = resolveThreads(options.threads, options.env);
  const load = loadAddon(options.location);
  if (!load.ok) throw new BackendError(`native kernels unavailable: ${load.reason}`, { hint: load.hint });
  const wanted = options.kernels ?? DEFAULT_NATIVE_KERNELS;
  for (const name of wanted) {
    if (!(NATIVE_KERNELS as readonly string[]).includes(name)) {
      throw new BackendError(`unknown native kernel "${name}". Known: ${NATIVE_KERNELS.join(', ')}`, {
        location: { field: 'kernels' },
        hint: 'pick kernel names from NATIVE_KERNELS',
      });
    }
  }
  const wantedGradients = options.gradients ?? NATIVE_GRADIENTS;
  for (const name of wantedGradients) {
    if (!(NATIVE_GRADIENTS as readonly string[]).includes(name)) {
      throw new BackendError(`unknown gradient "${name}". Known: ${NATIVE_GRADIENTS.join(', ')}`, {
        location: { field: 'gradients' },
        hint: 'pick gradient names from NATIVE_GRADIENTS',
      });
    }
  }
  if (tfjs.getKernel('BatchMatMul', BACKEND) === undefined) {
    throw new BackendError("the tfjs wasm backend's kernels are not registered", {
      hint: "import '@tensorflow/tfjs-backend-wasm' (core's wasmBackend().activate(tf) does) before installing native kernels",
    });
  }
  if (installed !== undefined) uninstallNativeKernels(tfjs);
  load.addon.setThreads(threads);
  const simd = load.addon.setSimdWidth(options.simd ?? (load.cpu.avx512f ? 512 : 256));
  const originals = new Map<NativeKernelName, tf.KernelConfig | undefined>();
  for (const name of wanted) {
    const original = tfjs.getKernel(name, BACKEND);
    const fused = isFusedKernel(name);
    // A stock kernel that is not registered: nothing to replace (and nothing to fall back to). A fused
    // kernel is new, and has no fallback: it handles (or rejects) every call itself.
    if (original === undefined && !fused) continue;
    const fallback: Fallback = (args) => {
      if (original === undefined) throw new BackendError(`no fallback for ${name}`, {});
      return original.kernelFunc(args);
    };
    if (original !== undefined) tfjs.unregisterKernel(name, BACKEND);
    tfjs.registerKernel({
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: makeKernel(name, load.addon, fallback, threads),
      // If the wasm backend initializes after this, it still sets up the stock kernel we fall back to.
      ...(original?.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    });
    originals.set(name, original);
  }
  const originalGradients = new Map<NativeGradientName, tf.GradConfig>();
  for (const name of wantedGradients) {
    const original = tfjs.getGradient(name);
    if (original === undefined) continue; // nothing to replace (tfjs-core without its gradients)
    if (!originals.has(gradientNeeds(name) as NativeKernelName)) continue;
    tfjs.registerGradient(nativeGradient(name));
    originalGradients.set(name, original);
  }
  installed = { originals, originalGradients, threads, simd, addon: load.addon };
  return [...originals.keys()];
}

/**
 * Puts the stock wasm kernels back and unregisters the fused ones. Does nothing when no native kernel
 * is installed.
 */
export function uninstallNativeKernels(tfjs: Tfjs): void {
  if (installed === undefined) return;
  for (const [name, original] of installed.originals) {
    if (tfjs.getKernel(name, BACKEND) !== undefined) tfjs.unregisterKernel(name, BACKEND);
    if (original !== undefined) tfjs.registerKernel(original);
  }
  for (const original of installed.originalGradients.values()) tfjs.registerGradient(original);
  installed = undefined;
}

/** What `quorum info` shows about the native backend. */
export interface NativeStatus {
  /** The addon loads and the CPU has AVX2 and FMA. */
  readonly loaded: boolean;
  /** Why not, when `loaded` is false. */
  readonly reason?: string;
  readonly hint?: string;
  readonly addonPath: string;
  readonly cpu?: CpuFeatures;
  /** The install step's record (build-status.json), when present. */
  readonly build?: BuildStatus;
  /** Threads of the installed kernels (undefined when not installed). */
  readonly threads?: number;
  /** Vector width of the installed kernels, 512 (AVX-512) or 256 (AVX2); undefined when not installed. */
  readonly simd?: number;
  /** Kernels currently replaced on the wasm backend. */
  readonly kernels: readonly NativeKernelName[];
  /** Gradient functions currently replaced. */
  readonly gradients: readonly NativeGradientName[];
}

export function nativeStatus(location: AddonLocation = {}): NativeStatus {
  const load = loadAddon(location);
  const build = readBuildStatus(location.statusPath);
  const common = {
    addonPath: location.addonPath ?? defaultAddonPath(),
    ...(build === undefined ? {} : { build }),
    ...(installed === undefined ? {} : { threads: installed.threads, simd: installed.simd }),
    kernels: installed === undefined ? [] : [...installed.originals.keys()],
    gradients: installed === undefined ? [] : [...installed.originalGradients.keys()],
  };
  if (!load.ok) {
    return {
      loaded: false,
      reason: load.reason,
      hint: load.hint,
      ...(load.cpu === undefined ? {} : { cpu: load.cpu }),
      ...common,
    };
  }
  return { loaded: true, cpu: load.cpu, ...common };
}
