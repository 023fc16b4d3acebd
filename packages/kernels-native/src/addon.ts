/**
 * Loading the N-API addon. Nothing here throws: `loadAddon()` returns either the addon or the
 * reason it cannot be used (not built, failed to build, does not load, CPU lacks AVX2/FMA), which
 * the backend's `probe()` and `nativeStatus()` report.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** CPU features the addon checks at run time. */
export interface CpuFeatures {
  readonly avx2: boolean;
  readonly fma: boolean;
  readonly avx512f: boolean;
}

/** The addon's functions. Every kernel works in place on Float32Array views. */
export interface NativeAddon {
  cpuFeatures(): CpuFeatures;
  setThreads(threads: number): void;
  getThreads(): number;
  /**
   * The vector width of matmul, exp, tanh, softmax and the fused kernels (GELU, SiLU, LayerNorm, RMSNorm, AdamW):
   * 512 (AVX-512, the default where the CPU has it) or 256 (AVX2).
   */
  simdWidth(): number;
  /** Chooses 512 or 256 (512 only where the CPU has AVX-512); returns the width now in use. */
  setSimdWidth(bits: 256 | 512): number;
  /** out[i] = act(op(a[aIdx[i]]) · op(b[bIdx[i]]) + bias); aIdx/bIdx null means i % batchA / i % batchB. */
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batchA: number,
    batchB: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    aIdx: Int32Array | null,
    bIdx: Int32Array | null,
    bias: Float32Array | null,
    biasScalar: boolean,
    activation: number,
    alpha: number,
  ): void;
  /**
   * meta = [rank, ...shape, ...aStrides, ...bStrides] (strides 0 on broadcast axes).
   * op: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min.
   */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, meta: Int32Array): void;
  /** op: 0 exp, 1 tanh, 2 square, 3 sqrt, 4 rsqrt, 5 neg. */
  unary(op: number, x: Float32Array, out: Float32Array): void;
  /** x as [outer, red, inner] → out [outer, inner], times scale. */
  reduceSum(
    x: Float32Array,
    out: Float32Array,
    outer: number,
    red: number,
    inner: number,
    scale: number,
  ): void;
  /** x as [outer, red, inner] → out [outer, inner], the maximum over `red`. */
  reduceMax(x: Float32Array, out: Float32Array, outer: number, red: number, inner: number): void;
  /** Softmax over the last axis of x as [rows, cols]. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /**
   * out (contiguous) [i_0, …] = x[offset + Σ i_d · stride_d]; meta = [rank, ...shape, ...strides, offset].
   * 4-byte elements (float32 or int32): transposes and slices.
   */
  stridedCopy(x: Float32Array | Int32Array, out: Float32Array | Int32Array, meta: Int32Array): void;
  /**
   * x as [outer, dim, inner] → out [outer, indices.length, inner] = x[o, indices[i], :]. Returns false
   * (writing nothing) when an index is outside [0, dim).
   */
  gather(
    x: Float32Array | Int32Array,
    indices: Int32Array,
    out: Float32Array | Int32Array,
    outer: number,
    dim: number,
    inner: number,
  ): boolean;
  /** x [ids.length, inner] → out [numSegments, inner]: out[s] = Σ x[i] over ids[i] = s (others skipped). */
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number, numSegments: number): void;
  /** y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))), elementwise. */
  gelu(x: Float32Array, out: Float32Array): void;
  /** dx = dy · gelu′(x), elementwise (dy and x of one length). */
  geluGrad(dy: Float32Array, x: Float32Array, out: Float32Array): void;
  /**
   * x as [rows, cols]: mean [rows], rstd [rows] = 1/√(biased variance + eps), y = (x − mean)·rstd·gamma + beta
   * (gamma, beta [cols]).
   */
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** The gradient of layerNorm: dx [rows, cols], dgamma [cols], dbeta [cols] (summed in a fixed order). */
  layerNormGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    cols: number,
  ): void;
  /** y = x·σ(x), elementwise. */
  silu(x: Float32Array, out: Float32Array): void;
  /** dx = dy · σ(x)·(1 + x·(1 − σ(x))), elementwise (dy and x of one length). */
  siluGrad(dy: Float32Array, x: Float32Array, out: Float32Array): void;
  /** x as [rows, cols]: rstd [rows] = 1/√(mean(x²) + eps), y = x·rstd·gamma (gamma [cols]). */
  rmsNorm(
    x: Float32Array,
    gamma: Float32Array,
    y: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** The gradient of rmsNorm: dx [rows, cols], dgamma [cols] (summed in a fixed order). */
  rmsNormGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    rows: number,
    cols: number,
  ): void;
  /**
   * One AdamW update over n elements (param, grad, m, v of one length; the outputs apart from them):
   * g = grad·gradScale, mOut = m·β1 + g·(1 − β1), vOut = v·β2 + g²·(1 − β2),
   * paramOut = param·(1 − lr·weightDecay) − ((mOut/bc1) / (√(vOut/bc2) + ε))·lr, in float32.
   */
  adamW(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    paramOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    weightDecay: number,
    biasCorrection1: number,
    biasCorrection2: number,
    gradScale: number,
  ): void;
}

/** What scripts/install.mjs recorded in build-status.json. */
export interface BuildStatus {
  readonly ok: boolean;
  readonly reason?: string;
  readonly hint?: string;
  /** The tail of the compiler's output when the build failed. */
  readonly detail?: string;
  readonly at?: string;
}

export type AddonLoad =
  | { readonly ok: true; readonly addon: NativeAddon; readonly cpu: CpuFeatures; readonly path: string }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly hint: string;
      readonly path: string;
      readonly cpu?: CpuFeatures;
      readonly build?: BuildStatus;
    };

export interface AddonLocation {
  /** The compiled addon. Default: `<package>/build/Release/quorum_native.node`. */
  readonly addonPath?: string;
  /** The install step's record. Default: `<package>/build-status.json`. */
  readonly statusPath?: string;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const REBUILD_HINT =
  'build it with `npm rebuild @quorum/kernels-native` (needs g++ and make), or use the wasm backend';

export function defaultAddonPath(): string {
  return path.join(packageRoot, 'build', 'Release', 'quorum_native.node');
}

export function defaultStatusPath(): string {
  return path.join(packageRoot, 'build-status.json');
}

/** Reads build-status.json; undefined when it is absent or unreadable. */
export function readBuildStatus(statusPath: string = defaultStatusPath()): BuildStatus | undefined {
  try {
    const parsed = JSON.parse(readFileSync(statusPath, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { ok?: unknown }).ok !== 'boolean')
      return undefined;
    return parsed as BuildStatus;
  } catch {
    return undefined;
  }
}

const cache = new Map<string, AddonLoad>();

/** Loads the addon (once per path) and checks the CPU. */
export function loadAddon(location: AddonLocation = {}): AddonLoad {
  const addonPath = location.addonPath ?? defaultAddonPath();
  const key = `${addonPath}\0${location.statusPath ?? ''}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const result = loadUncached(addonPath, location.statusPath ?? defaultStatusPath());
  cache.set(key, result);
  return result;
}

function loadUncached(addonPath: string, statusPath: string): AddonLoad {
  const build = readBuildStatus(statusPath);
  if (!existsSync(addonPath)) {
    if (build !== undefined && !build.ok) {
      return {
        ok: false,
        reason: `the native addon failed to build: ${build.reason ?? 'unknown reason'}`,
        hint: build.hint ?? REBUILD_HINT,
        path: addonPath,
        build,
      };
    }
    return {
      ok: false,
      reason: `the native addon is not built (${addonPath} is missing)`,
      hint: REBUILD_HINT,
      path: addonPath,
      ...(build === undefined ? {} : { build }),
    };
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (error) {
    return {
      ok: false,
      reason: `the native addon does not load: ${(error as Error).message.split('\n')[0]}`,
      hint: REBUILD_HINT,
      path: addonPath,
    };
  }
  const cpu = addon.cpuFeatures();
  if (!cpu.avx2 || !cpu.fma) {
    const missing = [cpu.avx2 ? undefined : 'AVX2', cpu.fma ? undefined : 'FMA']
      .filter((x) => x !== undefined)
      .join(' and ');
    return {
      ok: false,
      reason: `this CPU lacks ${missing}`,
      hint: 'use the wasm backend (the default fallback)',
      path: addonPath,
      cpu,
    };
  }
  return { ok: true, addon, cpu, path: addonPath };
}
