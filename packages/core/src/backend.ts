/**
 * Compute backends as plugins. A `ComputeBackend` says whether it can run here (`probe`) and makes
 * itself the active TensorFlow.js backend (`activate`). Built-ins: `wasm` (default), `cpu`, and
 * `tensorflow` (tfjs-node / tfjs-node-gpu, only when the user installed one). A plugin (e.g.
 * `@quorum/kernels-native`) adds more. Selection: the name asked for (config or `QUORUM_BACKEND`),
 * else the available backend with the highest priority; the active backend and the reason for the
 * choice are always reported, never a silent fallback.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { BackendError } from './errors.js';
import {
  defineExtensionPoint,
  defineStrategy,
  type StrategyDefinition,
  type StrategyRegistry,
  StrategyRegistry as StrategyRegistryClass,
} from './registry.js';

export type Tfjs = typeof tf;

export type ProbeResult =
  | { readonly available: true }
  | { readonly available: false; readonly reason: string; readonly hint?: string };

export interface ActivationInfo {
  /** Threads the backend computes with. */
  readonly threads: number;
  /** Extra facts for `quorum info` (e.g. which kernels were replaced). */
  readonly details?: string;
  /**
   * True when a matmul with a transposed operand costs about as much as a plain one. Stock wasm's does
   * not (10–16× slower), so model code transposes explicitly there; see @quorum/backbone's matmul.
   */
  readonly fastTransposedMatMul?: boolean;
}

/** A way to compute tensors. Strategies of the `compute-backend` extension point create these. */
export interface ComputeBackend {
  readonly name: string;
  /** Higher is preferred when the user names no backend. wasm is 10, cpu 0. */
  readonly priority: number;
  /** Called before selection: can this backend run here? Must not change global tfjs state. */
  probe(): Promise<ProbeResult>;
  /** Called once when selected: make this the active tfjs backend. Throws BackendError when it cannot. */
  activate(tfjs: Tfjs): Promise<ActivationInfo>;
}

export const ComputeBackend = defineExtensionPoint<ComputeBackend>(
  'ComputeBackend',
  'compute-backend',
  'where tensors are computed (tfjs backend plus kernel overrides)',
);

/** The active backend, as `quorum info` reports it. */
export interface ActiveBackend {
  readonly name: string;
  readonly threads: number;
  /** Why this backend is active, e.g. why a faster one is not. */
  readonly reason: string;
  readonly details?: string;
  /** See `ActivationInfo.fastTransposedMatMul`. */
  readonly fastTransposedMatMul: boolean;
}

const noOptions = z.object({}).strict();

async function setBackendChecked(tfjs: Tfjs, name: string, hint: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tfjs.setBackend(name);
  } catch (cause) {
    throw new BackendError(`tf.setBackend('${name}') threw`, { hint, cause });
  }
  if (!ok || tfjs.getBackend() !== name) {
    throw new BackendError(
      `tf.setBackend('${name}') returned false; TensorFlow.js is on '${tfjs.getBackend()}'`,
      { hint },
    );
  }
  await tfjs.ready();
}

/** The stock tfjs `cpu` backend: plain JavaScript, slow, always available. */
export function cpuBackend(): ComputeBackend {
  return {
    name: 'cpu',
    priority: 0,
    probe: async () => ({ available: true }),
    activate: async (tfjs) => {
      await setBackendChecked(tfjs, 'cpu', 'the cpu backend ships with @tensorflow/tfjs; reinstall it');
      return { threads: 1 };
    },
  };
}

/** The folder holding the tfjs wasm binaries, with the trailing slash `setWasmPaths` needs. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-backend-wasm');
  // entry: .../tfjs-backend-wasm/dist/tf-backend-wasm.node.js (or similar) → .../dist/
  return `${path.dirname(entry)}${path.sep}`;
}

/**
 * Registers kernels the wasm backend lacks but training needs. `UnsortedSegmentSum` is the gradient
 * of `tf.gather`, i.e. of every embedding lookup. Idempotent.
 */
export function registerWasmTrainingKernels(tfjs: Tfjs): void {
  if (tfjs.getKernel('UnsortedSegmentSum', 'wasm') !== undefined) return;
  tfjs.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const { numSegments } = attrs as unknown as { numSegments: number };
      const wasm = backend as unknown as WasmBackendLike;
      const nIds = tfjs.util.sizeFromShape(segmentIds.shape);
      const inner = nIds === 0 ? 0 : tfjs.util.sizeFromShape(x.shape) / nIds;
      const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
      const out = wasm.makeOutput(outShape, x.dtype); // may grow the heap: take views after it
      const xs = wasm.typedArrayFromHeap(x);
      const ids = wasm.typedArrayFromHeap(segmentIds);
      const os = wasm.typedArrayFromHeap(out);
      os.fill(0);
      for (let i = 0; i < nIds; i++) {
        const s = ids[i] as number;
        if (s < 0 || s >= numSegments) continue;
        const o = s * inner;
        const xo = i * inner;
        for (let j = 0; j < inner; j++) (os[o + j] as number) += xs[xo + j] as number;
      }
      return out;
    },
  });
}

/** The parts of the wasm backend's class that kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The tfjs `wasm` backend (SIMD, one thread in Node), plus the kernels it lacks for training. */
export function wasmBackend(): ComputeBackend {
  return {
    name: 'wasm',
    priority: 10,
    probe: async () => {
      try {
        wasmBinaryDir();
        return { available: true };
      } catch {
        return {
          available: false,
          reason: '@tensorflow/tfjs-backend-wasm is not installed',
          hint: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0',
        };
      }
    },
    activate: async (tfjs) => {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dir = wasmBinaryDir();
      wasm.setWasmPaths(dir);
      await setBackendChecked(tfjs, 'wasm', `check that ${dir} holds tfjs-backend-wasm*.wasm`);
      registerWasmTrainingKernels(tfjs);
      return { threads: 1, details: 'SIMD, single-threaded in Node; UnsortedSegmentSum added' };
    },
  };
}

/** The import used to load a tfjs-node package; replaceable in tests. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

const defaultImporter: ModuleImporter = (specifier) => import(specifier);

export const TENSORFLOW_INSTALL_HINT =
  'install one: `npm install @tensorflow/tfjs-node` (CPU) or `npm install @tensorflow/tfjs-node-gpu` (CUDA), ' +
  'at the version of @tensorflow/tfjs (4.22.0); their install script downloads libtensorflow, so it needs network access';

/**
 * libtensorflow through `@tensorflow/tfjs-node-gpu`, else `@tensorflow/tfjs-node`. Never a dependency
 * of Quorum: it is imported at run time only when the user installed one.
 */
export function tensorflowBackend(importer: ModuleImporter = defaultImporter): ComputeBackend {
  let loaded: string | undefined;
  const tryLoad = async (): Promise<string | undefined> => {
    if (loaded !== undefined) return loaded;
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await importer(pkg);
        loaded = pkg;
        return pkg;
      } catch {
        // not installed (or failed to load): try the next one
      }
    }
    return undefined;
  };
  return {
    name: 'tensorflow',
    priority: 30,
    probe: async () => {
      // A cheap check that does not load libtensorflow: is either package resolvable?
      const require = createRequire(import.meta.url);
      for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
        try {
          require.resolve(pkg);
          return { available: true };
        } catch {
          // try next
        }
      }
      if (importer !== defaultImporter && (await tryLoad()) !== undefined) return { available: true };
      return {
        available: false,
        reason: 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed',
        hint: TENSORFLOW_INSTALL_HINT,
      };
    },
    activate: async (tfjs) => {
      const pkg = await tryLoad();
      if (pkg === undefined) {
        throw new BackendError(
          'the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node',
          {
            hint: TENSORFLOW_INSTALL_HINT,
          },
        );
      }
      await setBackendChecked(
        tfjs,
        'tensorflow',
        `${pkg} loaded but did not register its backend; reinstall it`,
      );
      return {
        threads: 0,
        details: `libtensorflow via ${pkg} (threads managed by TensorFlow)`,
        fastTransposedMatMul: true,
      };
    },
  };
}

export const builtinBackendDefinitions: readonly StrategyDefinition<ComputeBackend, typeof noOptions>[] = [
  defineStrategy({
    name: 'wasm',
    description: 'tfjs WebAssembly backend with SIMD (default when no faster backend loads)',
    source: '@quorum/core',
    options: noOptions,
    create: () => wasmBackend(),
  }),
  defineStrategy({
    name: 'cpu',
    description: 'tfjs plain-JavaScript backend (slowest; a reference)',
    source: '@quorum/core',
    options: noOptions,
    create: () => cpuBackend(),
  }),
  defineStrategy({
    name: 'tensorflow',
    description: 'libtensorflow via @tensorflow/tfjs-node(-gpu), when the user installed it',
    source: '@quorum/core',
    options: noOptions,
    create: () => tensorflowBackend(),
  }),
];

let active: ActiveBackend | undefined;
let activating: Promise<ActiveBackend> | undefined;

/** The active backend, or undefined before `initCompute`. */
export function activeBackend(): ActiveBackend | undefined {
  return active;
}

export interface InitComputeOptions {
  /** Backend name from config; `QUORUM_BACKEND` is used when this is not set. */
  readonly backend?: string | undefined;
  /** Registry of compute backends (built-ins plus plugins). */
  readonly registry: StrategyRegistry<ComputeBackend>;
  /** Where to say once that a preferred backend was skipped. Default: stderr. */
  readonly warn?: (message: string) => void;
  /** Environment to read QUORUM_BACKEND from. Default: process.env. */
  readonly env?: Record<string, string | undefined>;
}

/**
 * Chooses and activates a backend (once per process; later calls return the active one, and a call
 * naming a different backend throws). Returns what was activated and why.
 */
export async function initCompute(options: InitComputeOptions): Promise<ActiveBackend> {
  const requested = options.backend ?? (options.env ?? process.env).QUORUM_BACKEND;
  if (activating !== undefined) {
    const current = await activating;
    if (requested !== undefined && requested !== '' && requested !== current.name) {
      throw new BackendError(
        `backend "${current.name}" is already active; cannot switch to "${requested}" in this process`,
        {
          hint: 'choose the backend once, before any tensor work',
        },
      );
    }
    return current;
  }
  activating = chooseAndActivate(options, requested === '' ? undefined : requested);
  try {
    active = await activating;
    return active;
  } catch (error) {
    activating = undefined;
    throw error;
  }
}

/** Forgets the active backend (tests only: tfjs itself stays on whatever backend it had). */
export function resetComputeForTests(): void {
  active = undefined;
  activating = undefined;
}

async function chooseAndActivate(
  options: InitComputeOptions,
  requested: string | undefined,
): Promise<ActiveBackend> {
  const { registry } = options;
  if (requested !== undefined) {
    if (!registry.has(requested)) {
      throw new BackendError(
        `unknown compute backend "${requested}". Registered: ${registry.names().join(', ')}`,
        {
          location: { field: options.backend !== undefined ? 'backend' : 'QUORUM_BACKEND' },
          hint: 'pick a registered backend, or load the plugin that provides it with --plugin',
        },
      );
    }
    const backend = registry.create(requested, 'backend');
    const probe = await backend.probe();
    if (!probe.available) {
      throw new BackendError(`compute backend "${requested}" is not available: ${probe.reason}`, {
        location: { field: options.backend !== undefined ? 'backend' : 'QUORUM_BACKEND' },
        hint: probe.hint ?? 'choose another backend with --backend or QUORUM_BACKEND',
      });
    }
    const info = await backend.activate(tf);
    return {
      name: backend.name,
      threads: info.threads,
      reason: `requested by ${options.backend !== undefined ? 'config' : 'QUORUM_BACKEND'}`,
      fastTransposedMatMul: info.fastTransposedMatMul === true,
      ...(info.details === undefined ? {} : { details: info.details }),
    };
  }
  const candidates = registry
    .names()
    .map((name) => registry.create(name, 'backend'))
    .sort((a, b) => b.priority - a.priority);
  const skipped: string[] = [];
  for (const backend of candidates) {
    const probe = await backend.probe();
    if (!probe.available) {
      if (backend.name !== 'tensorflow') skipped.push(`${backend.name}: ${probe.reason}`);
      continue;
    }
    try {
      const info = await backend.activate(tf);
      const reason =
        skipped.length === 0
          ? 'highest-priority available backend'
          : `default; not used: ${skipped.join('; ')}`;
      if (skipped.length > 0)
        (options.warn ?? ((m) => process.stderr.write(`${m}\n`)))(
          `quorum: using ${backend.name} (${skipped.join('; ')})`,
        );
      return {
        name: backend.name,
        threads: info.threads,
        reason,
        fastTransposedMatMul: info.fastTransposedMatMul === true,
        ...(info.details === undefined ? {} : { details: info.details }),
      };
    } catch (error) {
      skipped.push(`${backend.name}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new BackendError(`no compute backend could be activated (${skipped.join('; ')})`, {
    hint: 'reinstall @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm',
  });
}

/** A registry holding only the built-in backends (for scripts and tests that use no container). */
export function builtinBackendRegistry(): StrategyRegistry<ComputeBackend> {
  const registry = new StrategyRegistryClass<ComputeBackend>(ComputeBackend);
  for (const d of builtinBackendDefinitions) registry.register(d);
  return registry;
}
