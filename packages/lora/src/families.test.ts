/**
 * LoRA on every backbone family (Llama, Qwen2, GPT-NeoX, GPT-2 and the Quorum GPT): adapter shapes from the
 * backbone's parameter shapes (grouped-query k/v, head_dim ≠ D/H, SwiGLU's gate), the batched pass equal to
 * k separate runs, merged scoring equal to the factored pass, gradients reaching every site's A and B, and
 * mergeMember equal to the hook.
 */
import {
  disposeGpt,
  type GptConfig,
  type GptConfigInput,
  type GptParams,
  gptHidden,
  gptLastHidden,
  gptParameterShapes,
  initGpt,
  type LinearHook,
  namedParameters,
  resolveGptConfig,
} from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adapterVariables,
  disposeLoraAdapters,
  initLoraAdapters,
  type LoraAdapters,
  loraForwardOptions,
  loraLinearHook,
  mergeMember,
  namedAdapterParameters,
  unmergeMember,
} from './adapters.js';
import { type LoraConfigInput, resolveLoraConfig, sitePrefix } from './config.js';

const base = { vocabSize: 40, contextLength: 8, dModel: 16, nLayers: 2 };
const families: Record<string, GptConfigInput> = {
  // GQA (4 heads on 2 kv heads), head_dim 8 (q 32 wide on a 16-wide stream), SwiGLU 24, no biases, untied.
  llama: {
    ...base,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 8,
    positional: 'rope',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    mlpHidden: 24,
    attnBias: 'none',
    mlpBias: false,
    tieEmbeddings: false,
  },
  // q/k/v biases only, one kv head.
  qwen2: {
    ...base,
    nHeads: 4,
    nKvHeads: 1,
    positional: 'rope',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    mlpHidden: 20,
    attnBias: 'qkv',
    mlpBias: false,
  },
  // exact GELU, partial rotary, parallel residual.
  neox: {
    ...base,
    nHeads: 2,
    positional: 'rope',
    rotaryDims: 2,
    geluApprox: 'none',
    parallelResidual: true,
  },
  gpt2: { ...base, nHeads: 2, geluApprox: 'tanh', mlpRatio: 3 },
};

const K = 3;
const B = 2;
const T = 6;
let ids: tf.Tensor2D;
let mask: tf.Tensor2D;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  const rng = new Rng(3);
  ids = tf.tensor2d(
    Array.from({ length: B * T }, () => rng.int(base.vocabSize)),
    [B, T],
    'int32',
  );
  mask = tf.tensor2d([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [B, T], 'int32'); // first row left-padded
});

afterAll(() => {
  tf.dispose([ids, mask]);
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

function maxAbs(t: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0] as number);
}

/** Non-zero B everywhere, so every adapter changes the model. */
function randomizeB(adapters: LoraAdapters, seed: number): void {
  const rng = new Rng(seed);
  for (const s of adapters.sites) {
    const t = tf.tensor(rng.normalArray(s.b.size, 0.3), s.b.shape);
    s.b.assign(t);
    t.dispose();
  }
}

describe.each(Object.keys(families))('LoRA on the %s layout', (family) => {
  const gpt: GptConfig = resolveGptConfig(families[family]);
  const swiglu = gpt.mlp === 'swiglu';
  let params: GptParams;
  beforeAll(() => {
    params = initGpt(gpt, new Rng(7));
  });
  afterAll(() => disposeGpt(params));

  const make = (input: LoraConfigInput = {}): LoraAdapters => {
    const adapters = initLoraAdapters(gpt, resolveLoraConfig({ rank: 4, alpha: 8, ...input }), K, new Rng(1));
    randomizeB(adapters, 11);
    return adapters;
  };

  it("shapes every adapter after the base weight it adapts ('all-linear': gate on SwiGLU models)", () => {
    const adapters = make();
    const shapes = gptParameterShapes(gpt);
    const modules = ['q', 'k', 'v', 'o', ...(swiglu ? ['gate'] : []), 'fc', 'proj'];
    expect(adapters.sites.map((s) => `${s.layer}.${s.module}`)).toEqual(
      [0, 1].flatMap((l) => modules.map((m) => `${l}.${m}`)),
    );
    const named = namedAdapterParameters(adapters);
    for (const s of adapters.sites) {
      const [inDim, outDim] = shapes[`${sitePrefix(s.layer, s.module)}.w`] as number[];
      expect(named[`${sitePrefix(s.layer, s.module)}.lora_A`]?.shape).toEqual([K, inDim, 4]);
      expect(named[`${sitePrefix(s.layer, s.module)}.lora_B`]?.shape).toEqual([K, 4, outDim]);
    }
    disposeLoraAdapters(adapters);
  });

  it('runs k members in one batched pass equal to k separate runs, and the hook sees every target', () => {
    const adapters = make();
    const seen = new Set<string>();
    const hook = loraLinearHook(adapters);
    const spy: LinearHook = (site, x, y) => {
      const out = hook(site, x, y);
      if (out !== y) seen.add(`${site.layer}.${site.module}`);
      return out;
    };
    const before = tf.memory().numTensors;
    const all = gptHidden(params, gpt, ids, mask, { linearHook: spy, expand: { members: K, atLayer: 0 } }); // [K·B, T, D]
    expect(seen.size).toBe(adapters.sites.length);
    if (swiglu) expect(seen.has('1.gate')).toBe(true);
    const plain = gptHidden(params, gpt, ids, mask);
    for (let m = 0; m < K; m++) {
      const one = gptHidden(params, gpt, ids, mask, { linearHook: loraLinearHook(adapters, { member: m }) });
      expect(tf.tidy(() => maxAbsDiff(tf.slice(all, [m * B, 0, 0], [B, -1, -1]), one))).toBeLessThan(1e-5);
      expect(maxAbsDiff(one, plain)).toBeGreaterThan(1e-3);
      one.dispose();
    }
    tf.dispose([all, plain]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });

  it.each([
    ['every layer', {}],
    ['top layer, gate or fc only', { layers: { top: 1 }, targets: swiglu ? ['k', 'gate'] : ['k', 'fc'] }],
  ] as const)('merged scoring equals the factored pass to 1e-5 (%s)', (_, input) => {
    const adapters = make(input as LoraConfigInput);
    const before = tf.memory().numTensors;
    const factored = gptLastHidden(params, gpt, ids, mask, loraForwardOptions(adapters)); // [K·B, D]
    const merged = gptLastHidden(params, gpt, ids, mask, loraForwardOptions(adapters, { merged: true }));
    expect(merged.shape).toEqual([K * B, gpt.dModel]);
    expect(maxAbsDiff(merged, factored)).toBeLessThan(1e-5);
    const plain = gptLastHidden(params, gpt, ids, mask); // [B, D]
    expect(tf.tidy(() => maxAbsDiff(tf.slice(merged, [0, 0], [B, -1]), plain))).toBeGreaterThan(1e-3);
    tf.dispose([factored, merged, plain]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });

  it('trains: gradients reach every A and B, factored and merged agree, the base gets none', () => {
    const adapters = make();
    const vars = adapterVariables(adapters);
    // A fixed random read-out of the final hidden (mean(h²) is ≈ 1 after the final norm, a flat loss).
    const readout = tf.tensor2d(new Rng(5).normalArray(K * B * gpt.dModel, 1), [K * B, gpt.dModel]);
    const lossOf = (merged: boolean) => (): tf.Scalar =>
      tf.tidy(() => {
        const h = gptLastHidden(params, gpt, ids, mask, loraForwardOptions(adapters, { merged })); // [K·B, D]
        return tf.sum(tf.mul(h, readout)) as tf.Scalar;
      });
    const before = tf.memory().numTensors;
    const f = tf.variableGrads(lossOf(false), vars);
    const m = tf.variableGrads(lossOf(true), vars);
    const baseNames = new Set(Object.values(namedParameters(params)).map((v) => v.name));
    expect(Object.keys(f.grads).some((n) => baseNames.has(n))).toBe(false);
    for (const v of vars) {
      const g = f.grads[v.name] as tf.Tensor;
      const scale = maxAbs(g);
      expect(scale, v.name).toBeGreaterThan(0);
      expect(maxAbsDiff(m.grads[v.name] as tf.Tensor, g) / scale, v.name).toBeLessThan(1e-4);
    }
    tf.dispose([f.value, m.value, ...Object.values(f.grads), ...Object.values(m.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    readout.dispose();
    disposeLoraAdapters(adapters);
  });

  it('mergeMember equals the hooked member and unmergeMember restores the base', () => {
    const adapters = make({ layers: { top: 1 } });
    const original = Object.fromEntries(
      Object.entries(namedParameters(params)).map(([n, v]) => [n, v.clone()]),
    );
    const hooked = gptHidden(params, gpt, ids, mask, { linearHook: loraLinearHook(adapters, { member: 1 }) });
    mergeMember(params, adapters, 1);
    const merged = gptHidden(params, gpt, ids, mask);
    expect(maxAbsDiff(merged, hooked)).toBeLessThan(1e-5);
    if (swiglu) {
      const gate = namedParameters(params)['h.1.mlp.gate.w'] as tf.Variable;
      expect(maxAbsDiff(gate, original['h.1.mlp.gate.w'] as tf.Tensor)).toBeGreaterThan(1e-4);
    }
    unmergeMember(params, adapters, 1);
    for (const [name, v] of Object.entries(namedParameters(params))) {
      expect(maxAbsDiff(v, original[name] as tf.Tensor), name).toBeLessThan(1e-6);
    }
    tf.dispose([hooked, merged, ...Object.values(original)]);
    disposeLoraAdapters(adapters);
  });
});
