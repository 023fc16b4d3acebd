/**
 * The fused-kernel path of GELU, LayerNorm, SiLU and RMSNorm: with kernels registered under core's
 * FUSED_KERNELS names (here plain JavaScript implementations of the contract, standing in for a backend such
 * as `native`), a model's hidden states, loss and gradients equal the composed stock-op path (GPT-2's GELU and
 * LayerNorm; a Llama config's RMSNorm and SwiGLU), and the kernels really run.
 */
import { builtinBackendRegistry, FUSED_KERNELS, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveGptConfig } from './config.js';
import {
  composedGelu,
  composedLayerNorm,
  composedRmsNorm,
  composedSilu,
  exactGelu,
  fusedKernelsActive,
  gelu,
  layerNorm,
  rmsNorm,
  setFusedKernels,
  silu,
} from './fused.js';
import { disposeGpt, gptHidden, initGpt, namedParameters, tokenLogProbs } from './model.js';
import { AdamW } from './optim.js';

interface WasmLike {
  readSync(dataId: object): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

const calls: Record<string, number> = {};
const C = Math.sqrt(2 / Math.PI);

function register(
  name: string,
  fn: (
    ins: Float32Array[],
    shapes: number[][],
    attrs: tf.NamedAttrMap,
  ) => { shape: number[]; data: Float64Array }[],
  inputNames: string[],
): void {
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      calls[name] = (calls[name] ?? 0) + 1;
      const b = backend as unknown as WasmLike;
      const infos = inputNames.map((n) => inputs[n] as tf.TensorInfo);
      const outs = fn(
        infos.map((t) => b.readSync(t.dataId)),
        infos.map((t) => t.shape),
        attrs ?? {},
      ).map(({ shape, data }) => {
        const out = b.makeOutput(shape, 'float32');
        b.typedArrayFromHeap(out).set(data);
        return out;
      });
      return outs.length === 1 ? (outs[0] as tf.TensorInfo) : outs;
    },
  });
}

function registerReferenceKernels(): void {
  register(
    FUSED_KERNELS.gelu,
    ([x], [shape]) => [
      {
        shape: shape as number[],
        data: Float64Array.from(
          x as Float32Array,
          (v) => 0.5 * v * (1 + Math.tanh(C * (v + 0.044715 * v ** 3))),
        ),
      },
    ],
    ['x'],
  );
  register(
    FUSED_KERNELS.geluGrad,
    ([dy, x], [shape]) => [
      {
        shape: shape as number[],
        data: Float64Array.from(x as Float32Array, (v, i) => {
          const t = Math.tanh(C * (v + 0.044715 * v ** 3));
          return (
            ((dy as Float32Array)[i] as number) *
            (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * C * (1 + 3 * 0.044715 * v * v))
          );
        }),
      },
    ],
    ['dy', 'x'],
  );
  register(
    FUSED_KERNELS.layerNorm,
    ([x, g, b], [shape], attrs) => {
      const D = (shape as number[])[(shape as number[]).length - 1] as number;
      const N = (x as Float32Array).length / D;
      const y = new Float64Array(N * D);
      const mean = new Float64Array(N);
      const rstd = new Float64Array(N);
      for (let r = 0; r < N; r++) {
        const row = (x as Float32Array).subarray(r * D, (r + 1) * D);
        const mu = row.reduce((a, v) => a + v, 0) / D;
        const variance = row.reduce((a, v) => a + (v - mu) ** 2, 0) / D;
        const rs = 1 / Math.sqrt(variance + (attrs.epsilon as number));
        mean[r] = mu;
        rstd[r] = rs;
        for (let j = 0; j < D; j++)
          y[r * D + j] =
            ((row[j] as number) - mu) * rs * ((g as Float32Array)[j] as number) +
            ((b as Float32Array)[j] as number);
      }
      const rows = (shape as number[]).slice(0, -1);
      return [
        { shape: shape as number[], data: y },
        { shape: rows, data: mean },
        { shape: rows, data: rstd },
      ];
    },
    ['x', 'gamma', 'beta'],
  );
  register(
    FUSED_KERNELS.layerNormGrad,
    ([dy, x, g, mean, rstd], [shape]) => {
      const D = (shape as number[])[(shape as number[]).length - 1] as number;
      const N = (x as Float32Array).length / D;
      const dx = new Float64Array(N * D);
      const dg = new Float64Array(D);
      const db = new Float64Array(D);
      for (let r = 0; r < N; r++) {
        let mg = 0;
        let mgx = 0;
        const xh = new Float64Array(D);
        const gg = new Float64Array(D);
        for (let j = 0; j < D; j++) {
          const i = r * D + j;
          xh[j] =
            (((x as Float32Array)[i] as number) - ((mean as Float32Array)[r] as number)) *
            ((rstd as Float32Array)[r] as number);
          gg[j] = ((dy as Float32Array)[i] as number) * ((g as Float32Array)[j] as number);
          mg += gg[j] as number;
          mgx += (gg[j] as number) * (xh[j] as number);
          dg[j] = (dg[j] as number) + ((dy as Float32Array)[i] as number) * (xh[j] as number);
          db[j] = (db[j] as number) + ((dy as Float32Array)[i] as number);
        }
        mg /= D;
        mgx /= D;
        for (let j = 0; j < D; j++)
          dx[r * D + j] =
            ((rstd as Float32Array)[r] as number) * ((gg[j] as number) - mg - (xh[j] as number) * mgx);
      }
      return [
        { shape: shape as number[], data: dx },
        { shape: [D], data: dg },
        { shape: [D], data: db },
      ];
    },
    ['dy', 'x', 'gamma', 'mean', 'rstd'],
  );
}

function sigmoid64(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

function registerReferenceLlamaKernels(): void {
  register(
    FUSED_KERNELS.silu,
    ([x], [shape]) => [
      { shape: shape as number[], data: Float64Array.from(x as Float32Array, (v) => v * sigmoid64(v)) },
    ],
    ['x'],
  );
  register(
    FUSED_KERNELS.siluGrad,
    ([dy, x], [shape]) => [
      {
        shape: shape as number[],
        data: Float64Array.from(x as Float32Array, (v, i) => {
          const s = sigmoid64(v);
          return ((dy as Float32Array)[i] as number) * s * (1 + v * (1 - s));
        }),
      },
    ],
    ['dy', 'x'],
  );
  register(
    FUSED_KERNELS.rmsNorm,
    ([x, g], [shape], attrs) => {
      const D = (shape as number[])[(shape as number[]).length - 1] as number;
      const N = (x as Float32Array).length / D;
      const y = new Float64Array(N * D);
      const rstd = new Float64Array(N);
      for (let r = 0; r < N; r++) {
        const row = (x as Float32Array).subarray(r * D, (r + 1) * D);
        const rs = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / D + (attrs.epsilon as number));
        rstd[r] = rs;
        for (let j = 0; j < D; j++)
          y[r * D + j] = (row[j] as number) * rs * ((g as Float32Array)[j] as number);
      }
      return [
        { shape: shape as number[], data: y },
        { shape: (shape as number[]).slice(0, -1), data: rstd },
      ];
    },
    ['x', 'gamma'],
  );
  register(
    FUSED_KERNELS.rmsNormGrad,
    ([dy, x, g, rstd], [shape]) => {
      const D = (shape as number[])[(shape as number[]).length - 1] as number;
      const N = (x as Float32Array).length / D;
      const dx = new Float64Array(N * D);
      const dg = new Float64Array(D);
      for (let r = 0; r < N; r++) {
        const rs = (rstd as Float32Array)[r] as number;
        let mgx = 0;
        for (let j = 0; j < D; j++) {
          const i = r * D + j;
          const xh = ((x as Float32Array)[i] as number) * rs;
          mgx += ((dy as Float32Array)[i] as number) * ((g as Float32Array)[j] as number) * xh;
          dg[j] = (dg[j] as number) + ((dy as Float32Array)[i] as number) * xh;
        }
        mgx /= D;
        for (let j = 0; j < D; j++) {
          const i = r * D + j;
          const gg = ((dy as Float32Array)[i] as number) * ((g as Float32Array)[j] as number);
          dx[i] = rs * (gg - ((x as Float32Array)[i] as number) * rs * mgx);
        }
      }
      return [
        { shape: shape as number[], data: dx },
        { shape: [D], data: dg },
      ];
    },
    ['dy', 'x', 'gamma', 'rstd'],
  );
}

function registerReferenceAdamW(): void {
  register(
    FUSED_KERNELS.adamW,
    ([p, g, m, v], [shape], a) => {
      const n = (p as Float32Array).length;
      const p2 = new Float64Array(n);
      const m2 = new Float64Array(n);
      const v2 = new Float64Array(n);
      const at = (k: string): number => a[k] as number;
      for (let i = 0; i < n; i++) {
        const gi = ((g as Float32Array)[i] as number) * at('gradScale');
        m2[i] = at('beta1') * ((m as Float32Array)[i] as number) + (1 - at('beta1')) * gi;
        v2[i] = at('beta2') * ((v as Float32Array)[i] as number) + (1 - at('beta2')) * gi * gi;
        const update =
          (m2[i] as number) /
          at('biasCorrection1') /
          (Math.sqrt((v2[i] as number) / at('biasCorrection2')) + at('epsilon'));
        p2[i] = ((p as Float32Array)[i] as number) * (1 - at('lr') * at('weightDecay')) - at('lr') * update;
      }
      return [p2, m2, v2].map((data) => ({ shape: shape as number[], data }));
    },
    ['param', 'grad', 'm', 'v'],
  );
}

function maxRel(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => {
    const scale = Math.max(tf.max(tf.abs(b)).dataSync()[0] as number, 1e-6);
    return (tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number) / scale;
  });
}

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

afterAll(() => {
  setFusedKernels(undefined);
  for (const name of Object.values(FUSED_KERNELS)) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  }
});

describe('fused GELU and LayerNorm', () => {
  it('compose stock ops when the backend has no fused kernels', () => {
    expect(fusedKernelsActive()).toEqual({
      gelu: false,
      layerNorm: false,
      rmsNorm: false,
      silu: false,
      adamW: false,
    });
    const x = tf.tensor2d([-3, -0.5, 0, 0.5, 3, 8], [2, 3]);
    const g = tf.tensor1d([1, 0.5, -2]);
    const b = tf.zeros([3]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      expect(maxRel(gelu(x), composedGelu(x))).toBe(0);
      expect(maxRel(layerNorm(x, g, b, 1e-5), composedLayerNorm(x, g, b, 1e-5))).toBe(0);
      expect(maxRel(silu(x), composedSilu(x))).toBe(0);
      expect(maxRel(rmsNorm(x, g, 1e-5), composedRmsNorm(x, g, 1e-5))).toBe(0);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, g, b]);
  });

  it('run the fused kernels when registered: same hidden states and gradients as composed, nothing leaked', () => {
    registerReferenceKernels();
    expect(fusedKernelsActive()).toMatchObject({ gelu: true, layerNorm: true });
    const config = resolveGptConfig({ vocabSize: 40, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 });
    const params = initGpt(config, new Rng(3));
    // non-trivial gains and biases so dgamma/dbeta matter
    const rng = new Rng(4);
    for (const [name, v] of Object.entries(namedParameters(params))) {
      if (/ln_.\.(g|b)$/.test(name))
        v.assign(
          tf.tidy(() => tf.add(tf.tensor(rng.normalArray(v.size, 0.3), v.shape), name.endsWith('g') ? 1 : 0)),
        );
    }
    const ids = tf.tensor2d(
      Array.from({ length: 16 }, () => rng.int(40)),
      [2, 8],
      'int32',
    );
    const mask = tf.tensor2d([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], [2, 8], 'int32');
    const vars = Object.values(namedParameters(params));
    const loss = (): tf.Scalar =>
      tf.tidy(() => tf.mean(tf.square(gptHidden(params, config, ids, mask))) as tf.Scalar);

    const before = tf.memory().numTensors;
    for (const k of Object.keys(calls)) delete calls[k];
    const fused = tf.variableGrads(loss, vars);
    expect(calls).toMatchObject({
      [FUSED_KERNELS.gelu]: 2,
      [FUSED_KERNELS.geluGrad]: 2,
      [FUSED_KERNELS.layerNorm]: 5, // two per block and the final one
      [FUSED_KERNELS.layerNormGrad]: 5,
    });
    setFusedKernels(false);
    const composed = tf.variableGrads(loss, vars);
    setFusedKernels(undefined);
    expect(
      Math.abs((fused.value.dataSync()[0] as number) - (composed.value.dataSync()[0] as number)),
    ).toBeLessThan(1e-6);
    for (const v of vars) {
      expect(maxRel(fused.grads[v.name] as tf.Tensor, composed.grads[v.name] as tf.Tensor)).toBeLessThan(
        1e-4,
      );
    }
    tf.dispose([
      fused.value,
      composed.value,
      ...Object.values(fused.grads),
      ...Object.values(composed.grads),
    ]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, mask]);
    disposeGpt(params);
  });
});

describe('fused SiLU and RMSNorm', () => {
  it('a Llama config (RMSNorm, SwiGLU, GQA, RoPE): same loss and gradients fused and composed, nothing leaked', () => {
    registerReferenceLlamaKernels();
    expect(fusedKernelsActive()).toMatchObject({ rmsNorm: true, silu: true });
    // families.test.ts's llama: SwiGLU of width 24 (not a multiple of D), 4 query heads on 2 kv heads,
    // no biases, untied
    const config = resolveGptConfig({
      vocabSize: 37,
      contextLength: 16,
      dModel: 16,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      positional: 'rope',
      ropeTheta: 500000,
      norm: 'rmsnorm',
      mlp: 'swiglu',
      mlpHidden: 24,
      attnBias: 'none',
      mlpBias: false,
      tieEmbeddings: false,
    });
    const params = initGpt(config, new Rng(5));
    // non-trivial gains so dgamma matters
    const rng = new Rng(6);
    for (const [name, v] of Object.entries(namedParameters(params))) {
      if (/ln_.\.g$/.test(name))
        v.assign(tf.tidy(() => tf.add(tf.tensor(rng.normalArray(v.size, 0.3), v.shape), 1)));
    }
    const B = 3;
    const T = 10;
    const ids = tf.tensor2d(
      Array.from({ length: B * T }, () => rng.int(config.vocabSize)),
      [B, T],
      'int32',
    );
    const mask = tf.tensor2d(
      [...Array(T).fill(1), ...Array(7).fill(1), 0, 0, 0, 0, 0, ...Array(8).fill(1)],
      [B, T],
      'int32',
    ); // full, right-padded, left-padded
    const vars = Object.values(namedParameters(params));
    // the LM loss (mean token log-prob over real next tokens), as SFT trains it
    const loss = (): tf.Scalar =>
      tf.tidy(() => {
        const lp = tokenLogProbs(params, config, ids, mask); // [B, T-1]
        const valid = tf.cast(tf.slice(mask, [0, 1], [B, T - 1]), 'float32'); // [B, T-1]
        return tf.neg(tf.div(tf.sum(tf.mul(lp, valid)), tf.sum(valid))) as tf.Scalar;
      });

    const before = tf.memory().numTensors;
    for (const k of Object.keys(calls)) delete calls[k];
    const fused = tf.variableGrads(loss, vars);
    expect(calls).toEqual({
      [FUSED_KERNELS.rmsNorm]: 5, // two per block and the final one
      [FUSED_KERNELS.rmsNormGrad]: 5,
      [FUSED_KERNELS.silu]: 2, // SwiGLU's gate, one per block
      [FUSED_KERNELS.siluGrad]: 2,
    });
    setFusedKernels(false);
    for (const k of Object.keys(calls)) delete calls[k];
    const composed = tf.variableGrads(loss, vars);
    expect(calls).toEqual({}); // composed: no fused kernel ran
    setFusedKernels(undefined);
    const lf = fused.value.dataSync()[0] as number;
    const lc = composed.value.dataSync()[0] as number;
    expect(Math.abs(lf - lc) / Math.abs(lc)).toBeLessThan(1e-6);
    for (const v of vars) {
      expect(
        maxRel(fused.grads[v.name] as tf.Tensor, composed.grads[v.name] as tf.Tensor),
        v.name,
      ).toBeLessThan(1e-4);
    }
    // dgamma is part of the comparison, not zero on both sides
    const gain = namedParameters(params)['h.0.ln_1.g'] as tf.Variable;
    const dgain = fused.grads[gain.name] as tf.Tensor;
    expect(tf.tidy(() => tf.max(tf.abs(dgain)).dataSync()[0] as number)).toBeGreaterThan(1e-4);
    tf.dispose([
      fused.value,
      composed.value,
      ...Object.values(fused.grads),
      ...Object.values(composed.grads),
    ]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, mask]);
    disposeGpt(params);
  });
});

describe('fused AdamW', () => {
  it('updates parameters and moments as the composed ops do (decay, no decay, clipping), one kernel per parameter', () => {
    registerReferenceAdamW();
    expect(fusedKernelsActive().adamW).toBe(true);
    const rng = new Rng(31);
    const make = (): Record<string, tf.Variable> => ({
      w: tf.variable(tf.tensor(rng.normalArray(6 * 5, 0.5), [6, 5])), // decays (rank 2)
      b: tf.variable(tf.tensor(rng.normalArray(5, 0.5), [5])), // does not
    });
    const a = make();
    const b = { w: tf.variable(a.w.clone()), b: tf.variable(a.b.clone()) };
    const config = { lr: 0.05, weightDecay: 0.1, clipNorm: 0.5, beta2: 0.95 };
    const fusedOpt = new AdamW(a, config);
    const composedOpt = new AdamW(b, config);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 4; step++) {
      const grads = {
        w: tf.tensor(rng.normalArray(30, 1), [6, 5]),
        b: tf.tensor(rng.normalArray(5, 1), [5]),
      };
      delete calls[FUSED_KERNELS.adamW];
      fusedOpt.applyGradients(grads);
      expect(calls[FUSED_KERNELS.adamW]).toBe(2);
      setFusedKernels(false);
      composedOpt.applyGradients(grads);
      setFusedKernels(undefined);
      tf.dispose(Object.values(grads));
    }
    expect(maxRel(a.w, b.w)).toBeLessThan(1e-5);
    expect(maxRel(a.b, b.b)).toBeLessThan(1e-5);
    const sa = fusedOpt.state();
    const sb = composedOpt.state();
    for (const k of Object.keys(sb.tensors))
      expect(maxRel(sa.tensors[k] as tf.Tensor, sb.tensors[k] as tf.Tensor)).toBeLessThan(1e-5);
    tf.dispose([...Object.values(sa.tensors), ...Object.values(sb.tensors)]);
    expect(tf.memory().numTensors).toBe(before);
    fusedOpt.dispose();
    composedOpt.dispose();
    tf.dispose([...Object.values(a), ...Object.values(b)]);
  });
});

describe('exact GELU, SiLU and RMSNorm (composed)', () => {
  it('give the reference values, with gradients', () => {
    const x = tf.tensor1d([-2, -0.5, 0, 1, 2]);
    // x·Φ(x) and x·σ(x), from scipy / PyTorch's F.gelu and F.silu
    const geluRef = [-0.04550026389635842, -0.15426876936299347, 0, 0.8413447460685429, 1.9544997361036416];
    const siluRef = [-0.23840584404423515, -0.1887703303653528, 0, 0.7310585786300049, 1.7615941559557646];
    const close = (t: tf.Tensor, ref: number[]): void => {
      for (const [i, v] of (t.dataSync() as Float32Array).entries())
        expect(v).toBeCloseTo(ref[i] as number, 6);
    };
    tf.tidy(() => {
      close(exactGelu(x), geluRef);
      close(silu(x), siluRef);
      // d/dx x·Φ(x) = Φ(x) + x·φ(x) at 1: 0.8413447 + 0.2419707
      close(tf.grad((t) => exactGelu(t))(tf.tensor1d([1])), [1.0833154705876864]);
      // the tanh GELU differs from the exact one by up to ~1e-3
      expect(maxRel(gelu(x), exactGelu(x))).toBeGreaterThan(1e-5);
      const rows = tf.tensor2d([1, 2, 3, 4, -1, 0, 0, 1], [2, 4]);
      const g = tf.tensor1d([1, 0.5, 2, -1]);
      const rms = (r: number[]): number => Math.sqrt(r.reduce((a, v) => a + v * v, 0) / r.length + 1e-5);
      const ref = [
        [1, 2, 3, 4].map((v, i) => (v / rms([1, 2, 3, 4])) * [1, 0.5, 2, -1][i]!),
        [-1, 0, 0, 1].map((v, i) => (v / rms([-1, 0, 0, 1])) * [1, 0.5, 2, -1][i]!),
      ].flat();
      close(rmsNorm(rows, g, 1e-5), ref);
    });
    x.dispose();
  });
});
