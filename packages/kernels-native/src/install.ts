/**
 * Installs the native kernels on the tfjs `wasm` backend (tf.unregisterKernel + tf.registerKernel),
 * keeping each stock kernel for fallback inside the override and for `uninstallNativeKernels()`.
 */
import { BackendError } from '@quorum/core';
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
  reduceKernel,
  softmaxKernel,
  UNARY_OPS,
  unaryKernel,
} from './elementwise.js';
import { batchMatMulKernel, fusedMatMulKernel } from './matmul.js';

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
  'Exp',
  'Tanh',
  'Sum',
  'Mean',
  'Softmax',
] as const;
export type NativeKernelName = (typeof NATIVE_KERNELS)[number];

/**
 * Installed by default: the kernels that measurably beat the stock wasm kernel (bench/kernels.mjs:
 * matmuls 2.5-30x, Exp 13x, Tanh 20x, Sum 25x, Mean 2x, Softmax 1.4x). Add/Sub/Multiply/RealDiv are
 * available but not default: stock wasm's SIMD loops were 1.5-2.5x faster than the addon's here.
 */
export const DEFAULT_NATIVE_KERNELS: readonly NativeKernelName[] = [
  'BatchMatMul',
  '_FusedMatMul',
  'Exp',
  'Tanh',
  'Sum',
  'Mean',
  'Softmax',
];

const BACKEND = 'wasm';

export interface NativeKernelOptions {
  /** Threads for the native kernels. Default: QUORUM_THREADS, else 2. */
  readonly threads?: number | undefined;
  /** Which kernels to replace. Default: DEFAULT_NATIVE_KERNELS. */
  readonly kernels?: readonly NativeKernelName[] | undefined;
  /** Where the addon is (tests inject a path). */
  readonly location?: AddonLocation | undefined;
  /** Environment to read QUORUM_THREADS from. Default: process.env. */
  readonly env?: Record<string, string | undefined> | undefined;
}

interface Installed {
  readonly originals: Map<NativeKernelName, tf.KernelConfig>;
  readonly threads: number;
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

function makeKernel(name: NativeKernelName, addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  switch (name) {
    case 'BatchMatMul':
      return batchMatMulKernel(addon, fallback);
    case '_FusedMatMul':
      return fusedMatMulKernel(addon, fallback);
    case 'Add':
    case 'Sub':
    case 'Multiply':
    case 'RealDiv':
      return binaryKernel(addon, BINARY_OPS[name] as number, fallback);
    case 'Exp':
    case 'Tanh':
      return unaryKernel(addon, UNARY_OPS[name] as number, fallback);
    case 'Sum':
      return reduceKernel(addon, false, fallback);
    case 'Mean':
      return reduceKernel(addon, true, fallback);
    case 'Softmax':
      return softmaxKernel(addon, fallback);
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
  if (tfjs.getKernel('BatchMatMul', BACKEND) === undefined) {
    throw new BackendError("the tfjs wasm backend's kernels are not registered", {
      hint: "import '@tensorflow/tfjs-backend-wasm' (core's wasmBackend().activate(tf) does) before installing native kernels",
    });
  }
  if (installed !== undefined) uninstallNativeKernels(tfjs);
  load.addon.setThreads(threads);
  const originals = new Map<NativeKernelName, tf.KernelConfig>();
  for (const name of wanted) {
    const original = tfjs.getKernel(name, BACKEND);
    if (original === undefined) continue; // nothing to replace (and nothing to fall back to)
    const fallback: Fallback = (args) => original.kernelFunc(args);
    tfjs.unregisterKernel(name, BACKEND);
    tfjs.registerKernel({
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: makeKernel(name, load.addon, fallback),
      // If the wasm backend initializes after this, it still sets up the stock kernel we fall back to.
      ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    });
    originals.set(name, original);
  }
  installed = { originals, threads, addon: load.addon };
  return [...originals.keys()];
}

/** Puts the stock wasm kernels back. Does nothing when no native kernel is installed. */
export function uninstallNativeKernels(tfjs: Tfjs): void {
  if (installed === undefined) return;
  for (const [name, original] of installed.originals) {
    if (tfjs.getKernel(name, BACKEND) !== undefined) tfjs.unregisterKernel(name, BACKEND);
    tfjs.registerKernel(original);
  }
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
  /** Kernels currently replaced on the wasm backend. */
  readonly kernels: readonly NativeKernelName[];
}

export function nativeStatus(location: AddonLocation = {}): NativeStatus {
  const load = loadAddon(location);
  const build = readBuildStatus(location.statusPath);
  const common = {
    addonPath: location.addonPath ?? defaultAddonPath(),
    ...(build === undefined ? {} : { build }),
    ...(installed === undefined ? {} : { threads: installed.threads }),
    kernels: installed === undefined ? [] : [...installed.originals.keys()],
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
