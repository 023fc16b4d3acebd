import {
  disposeGpt,
  type GptParams,
  gptHidden,
  initGpt,
  type LinearHook,
  namedParameters,
  resolveGptConfig,
} from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
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
import { type LoraConfig, resolveLoraConfig } from './config.js';

const gpt = resolveGptConfig({ vocabSize: 50, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 });
const K = 3;
const B = 2;
const T = 6;
let base: GptParams;
let ids: tf.Tensor2D;
let mask: tf.Tensor2D;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  base = initGpt(gpt, new Rng(7));
  const rng = new Rng(3);
  ids = tf.tensor2d(
    Array.from({ length: B * T }, () => rng.int(gpt.vocabSize)),
    [B, T],
    'int32',
  );
  mask = tf.tensor2d([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [B, T], 'int32'); // second row right-padded
});

afterAll(() => {
  disposeGpt(base);
  ids.dispose();
  mask.dispose();
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

/** Gives every B a non-zero value so the adapters change the model. */
function randomizeB(adapters: LoraAdapters, seed: number, std = 0.2): void {
  const rng = new Rng(seed);
  for (const s of adapters.sites) {
    const t = tf.tensor(rng.normalArray(s.b.size, std), s.b.shape);
    s.b.assign(t);
    t.dispose();
  }
}

function make(lora: LoraConfig, seed = 1): LoraAdapters {
  return initLoraAdapters(gpt, lora, K, new Rng(seed));
}

/** All k members at once: expand at the first adapted layer plus the batched hook. [K·B, T, D] */
function batched(adapters: LoraAdapters, atLayer?: number): tf.Tensor3D {
  if (atLayer === undefined) return gptHidden(base, gpt, ids, mask, loraForwardOptions(adapters));
  return gptHidden(base, gpt, ids, mask, {
    linearHook: loraLinearHook(adapters),
    expand: { members: adapters.members, atLayer },
  });
}

/** Member m alone, no expansion. [B, T, D] */
function alone(adapters: LoraAdapters, member: number): tf.Tensor3D {
  return gptHidden(base, gpt, ids, mask, { linearHook: loraLinearHook(adapters, { member }) });
}

function memberSlice(hidden: tf.Tensor3D, member: number): tf.Tensor3D {
  return tf.slice(hidden, [member * B, 0, 0], [B, -1, -1]);
}

/** max |member m's rows of `hidden` − other|, leaving no tensor behind. */
function memberDiff(hidden: tf.Tensor3D, member: number, other: tf.Tensor): number {
  return tf.tidy(() => maxAbsDiff(memberSlice(hidden, member), other));
}

describe('initLoraAdapters', () => {
  it('makes A [k, in, r] Kaiming-uniform and B [k, r, out] zero, members differing', () => {
    const adapters = make(resolveLoraConfig({}));
    const named = namedAdapterParameters(adapters);
    expect(named['h.0.attn.q.lora_A']?.shape).toEqual([K, 16, 8]);
    expect(named['h.1.mlp.fc.lora_B']?.shape).toEqual([K, 8, 64]);
    expect(named['h.1.mlp.proj.lora_A']?.shape).toEqual([K, 64, 8]);
    expect(Object.keys(named)).toHaveLength(2 * 6 * 2);
    for (const s of adapters.sites) {
      expect(tf.tidy(() => tf.max(tf.abs(s.b)).dataSync()[0])).toBe(0);
      const bound = 1 / Math.sqrt(s.inDim);
      expect(tf.tidy(() => tf.max(tf.abs(s.a)).dataSync()[0])).toBeLessThanOrEqual(bound);
      expect(tf.tidy(() => tf.max(tf.abs(s.a)).dataSync()[0])).toBeGreaterThan(bound / 2);
    }
    const a = named['h.0.attn.q.lora_A'] as tf.Variable;
    expect(
      maxAbsDiff(tf.slice(a, [0, 0, 0], [1, -1, -1]), tf.slice(a, [1, 0, 0], [1, -1, -1])),
    ).toBeGreaterThan(0);
    disposeLoraAdapters(adapters);
  });

  it('is deterministic for a seed', () => {
    const x = make(resolveLoraConfig({}), 5);
    const y = make(resolveLoraConfig({}), 5);
    x.sites.forEach((s, i) => {
      expect(maxAbsDiff(s.a, y.sites[i]?.a as tf.Tensor)).toBe(0);
    });
    disposeLoraAdapters(x);
    disposeLoraAdapters(y);
  });

  it('rejects a bad member count', () => {
    expect(() => initLoraAdapters(gpt, resolveLoraConfig({}), 0, new Rng(1))).toThrow(ConfigError);
  });
});

describe('loraLinearHook', () => {
  it('with B = 0 equals the base model for every member', () => {
    const adapters = make(resolveLoraConfig({}));
    const before = tf.memory().numTensors;
    const plain = gptHidden(base, gpt, ids, mask); // [B, T, D]
    const all = batched(adapters); // [K·B, T, D]
    expect(all.shape).toEqual([K * B, T, 16]);
    for (let m = 0; m < K; m++) expect(memberDiff(all, m, plain)).toBeLessThan(1e-6);
    tf.dispose([plain, all]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });

  it('runs k adapters in one batched pass equal to k separate runs (non-zero B)', () => {
    const adapters = make(resolveLoraConfig({ rank: 4, alpha: 8 }));
    randomizeB(adapters, 11);
    const before = tf.memory().numTensors;
    const all = batched(adapters);
    const plain = gptHidden(base, gpt, ids, mask);
    for (let m = 0; m < K; m++) {
      const one = alone(adapters, m);
      expect(memberDiff(all, m, one)).toBeLessThan(1e-5);
      expect(maxAbsDiff(one, plain)).toBeGreaterThan(1e-3); // the adapter really changes the model
      one.dispose();
    }
    expect(tf.tidy(() => memberDiff(all, 0, memberSlice(all, 1)))).toBeGreaterThan(1e-3);
    tf.dispose([all, plain]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });

  it('adapts only the chosen targets', () => {
    const adapters = make(resolveLoraConfig({ targets: ['v', 'fc'] }));
    randomizeB(adapters, 12);
    const seen: string[] = [];
    const hook = loraLinearHook(adapters);
    const spy: LinearHook = (site, x, y) => {
      const out = hook(site, x, y);
      if (out !== y) seen.push(`${site.layer}.${site.module}`);
      return out;
    };
    tf.dispose(gptHidden(base, gpt, ids, mask, { linearHook: spy, expand: { members: K, atLayer: 0 } }));
    expect(seen).toEqual(['0.v', '0.fc', '1.v', '1.fc']);
    disposeLoraAdapters(adapters);
  });

  it('with layers { top: 1 } shares the activations below the first adapted layer', () => {
    const adapters = make(resolveLoraConfig({ layers: { top: 1 } }));
    expect(adapters.firstLayer).toBe(1);
    randomizeB(adapters, 13);
    const rows: Record<string, number> = {};
    const hook = loraLinearHook(adapters);
    const spy: LinearHook = (site, x, y) => {
      rows[`${site.layer}.${site.module}`] = x.shape[0];
      return hook(site, x, y);
    };
    const shared = gptHidden(base, gpt, ids, mask, { linearHook: spy, expand: { members: K, atLayer: 1 } });
    // layer 0 ran once for the whole ensemble, layer 1 once per member
    expect(rows['0.q']).toBe(B * T);
    expect(rows['0.proj']).toBe(B * T);
    expect(rows['1.q']).toBe(K * B * T);
    // the same as expanding from the start (layer 0 then has no adapter and leaves y unchanged) …
    const early = batched(adapters, 0);
    expect(maxAbsDiff(shared, early)).toBeLessThan(1e-5);
    // … and as k separate runs
    for (let m = 0; m < K; m++) {
      const one = alone(adapters, m);
      expect(memberDiff(shared, m, one)).toBeLessThan(1e-5);
      one.dispose();
    }
    tf.dispose([shared, early]);
    disposeLoraAdapters(adapters);
  });

  it('applies seeded dropout on the LoRA input only when training', () => {
    const adapters = make(resolveLoraConfig({ dropout: 0.5 }));
    randomizeB(adapters, 14);
    const evalOut = batched(adapters); // no dropoutRng: eval mode
    const noDrop = make(resolveLoraConfig({ dropout: 0 }));
    adapters.sites.forEach((s, i) => {
      noDrop.sites[i]?.a.assign(s.a);
      noDrop.sites[i]?.b.assign(s.b);
    });
    const reference = batched(noDrop);
    expect(maxAbsDiff(evalOut, reference)).toBeLessThan(1e-6);
    const train = (seed: number): tf.Tensor3D =>
      gptHidden(base, gpt, ids, mask, loraForwardOptions(adapters, { dropoutRng: new Rng(seed) }));
    const t1 = train(1);
    const t1again = train(1);
    const t2 = train(2);
    expect(maxAbsDiff(t1, t1again)).toBe(0);
    expect(maxAbsDiff(t1, t2)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(t1, evalOut)).toBeGreaterThan(1e-4);
    tf.dispose([evalOut, reference, t1, t1again, t2]);
    disposeLoraAdapters(adapters);
    disposeLoraAdapters(noDrop);
  });

  it('fails fast without member expansion and for a bad member', () => {
    const adapters = initLoraAdapters(gpt, resolveLoraConfig({}), 5, new Rng(1)); // 12 rows are not 5 members
    const before = tf.memory().numTensors;
    expect(() => gptHidden(base, gpt, ids, mask, { linearHook: loraLinearHook(adapters) })).toThrow(/expand/);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => loraLinearHook(adapters, { member: 5 })).toThrow(/member 5 is outside 0…4/);
    disposeLoraAdapters(adapters);
  });
});

describe('loraForwardOptions({ merged: true })', () => {
  it.each([
    ['all layers', {}],
    ['top layer, two targets', { layers: { top: 1 }, targets: ['q', 'fc'] }],
  ])('gives the factored pass to 1e-5 with one matmul per adapted layer (%s)', (_, options) => {
    const adapters = make(resolveLoraConfig({ rank: 4, alpha: 8, ...options }));
    randomizeB(adapters, 21);
    const before = tf.memory().numTensors;
    const factored = batched(adapters);
    const merged = gptHidden(base, gpt, ids, mask, loraForwardOptions(adapters, { merged: true })); // [K·B, T, D]
    expect(merged.shape).toEqual(factored.shape);
    expect(maxAbsDiff(merged, factored)).toBeLessThan(1e-5);
    expect(tf.tidy(() => memberDiff(merged, 0, memberSlice(merged, 1)))).toBeGreaterThan(1e-3); // members differ
    tf.dispose([factored, merged]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });

  it('still passes gradients to A and B (the same as the factored form)', () => {
    const adapters = make(resolveLoraConfig({ rank: 2, layers: { top: 1 } }));
    randomizeB(adapters, 22);
    const vars = adapterVariables(adapters);
    const lossOf = (merged: boolean) => (): tf.Scalar =>
      tf.tidy(
        () =>
          tf.mean(
            tf.square(gptHidden(base, gpt, ids, mask, loraForwardOptions(adapters, { merged }))),
          ) as tf.Scalar,
      );
    const f = tf.variableGrads(lossOf(false), vars);
    const m = tf.variableGrads(lossOf(true), vars);
    for (const v of vars) {
      const g = f.grads[v.name] as tf.Tensor;
      const scale = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0] as number);
      expect(scale).toBeGreaterThan(0);
      expect(maxAbsDiff(m.grads[v.name] as tf.Tensor, g) / scale).toBeLessThan(1e-3); // float32, another order
    }
    tf.dispose([f.value, m.value, ...Object.values(f.grads), ...Object.values(m.grads)]);
    disposeLoraAdapters(adapters);
  });

  it('refuses LoRA dropout, and member weights before the expansion', () => {
    const adapters = make(resolveLoraConfig({ dropout: 0.1 }));
    expect(() => loraForwardOptions(adapters, { merged: true, dropoutRng: new Rng(1) })).toThrow(/dropout/);
    const { memberWeights } = loraForwardOptions(adapters, { merged: true });
    const before = tf.memory().numTensors;
    // layer 0 is adapted but the batch is expanded only at layer 1: the error names the fix
    expect(() =>
      gptHidden(base, gpt, ids, mask, { memberWeights, expand: { members: K, atLayer: 1 } }),
    ).toThrow(/before the member expansion/);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });
});

describe('mergeMember / unmergeMember', () => {
  it('merged member m without a hook equals the hooked forward, and the round trip restores the base', () => {
    const adapters = make(resolveLoraConfig({ layers: { top: 1 }, targets: ['q', 'o', 'fc', 'proj'] }));
    randomizeB(adapters, 15);
    const original = Object.fromEntries(
      Object.entries(namedParameters(base)).map(([n, v]) => [n, v.clone()]),
    );
    const before = tf.memory().numTensors;
    for (let m = 0; m < K; m++) {
      const hooked = alone(adapters, m);
      mergeMember(base, adapters, m);
      const merged = gptHidden(base, gpt, ids, mask);
      expect(maxAbsDiff(merged, hooked)).toBeLessThan(1e-5);
      const w = namedParameters(base)['h.1.attn.q.w'] as tf.Variable;
      expect(maxAbsDiff(w, original['h.1.attn.q.w'] as tf.Tensor)).toBeGreaterThan(1e-4);
      unmergeMember(base, adapters, m);
      tf.dispose([hooked, merged]);
    }
    expect(tf.memory().numTensors).toBe(before);
    for (const [name, v] of Object.entries(namedParameters(base))) {
      expect(maxAbsDiff(v, original[name] as tf.Tensor), name).toBeLessThan(1e-6);
    }
    tf.dispose(Object.values(original));
    disposeLoraAdapters(adapters);
  });

  it('rejects a member outside 0…k−1 and changes nothing', () => {
    const adapters = make(resolveLoraConfig({}));
    expect(() => mergeMember(base, adapters, -1)).toThrow(ConfigError);
    disposeLoraAdapters(adapters);
  });

  it('rejects a base of another shape before changing any weight', () => {
    const other = resolveGptConfig({
      vocabSize: 50,
      contextLength: 8,
      dModel: 16,
      nLayers: 2,
      nHeads: 2,
      mlpRatio: 2,
    });
    const adapters = initLoraAdapters(other, resolveLoraConfig({}), K, new Rng(1));
    const q = (namedParameters(base)['h.0.attn.q.w'] as tf.Variable).clone();
    expect(() => mergeMember(base, adapters, 0)).toThrow(/mlp\.fc\.w/);
    expect(maxAbsDiff(q, namedParameters(base)['h.0.attn.q.w'] as tf.Tensor)).toBe(0);
    q.dispose();
    disposeLoraAdapters(adapters);
  });
});

describe('gradients', () => {
  it('flow to A and B only, through the frozen base', () => {
    const adapters = make(resolveLoraConfig({ rank: 2 }));
    const vars = adapterVariables(adapters);
    const loss = (): tf.Scalar => tf.tidy(() => tf.mean(tf.square(batched(adapters))) as tf.Scalar);
    const before = tf.memory().numTensors;

    // At init B = 0, so dL/dA = 0 and dL/dB ≠ 0 (PEFT's property: training starts from the base model).
    let { value, grads } = tf.variableGrads(loss, vars);
    expect(Object.keys(grads).sort()).toEqual(vars.map((v) => v.name).sort());
    for (const s of adapters.sites) {
      expect(tf.tidy(() => tf.max(tf.abs(grads[s.a.name] as tf.Tensor)).dataSync()[0])).toBe(0);
      expect(tf.tidy(() => tf.max(tf.abs(grads[s.b.name] as tf.Tensor)).dataSync()[0])).toBeGreaterThan(0);
    }
    tf.dispose([value, ...Object.values(grads)]);

    randomizeB(adapters, 16);
    ({ value, grads } = tf.variableGrads(loss, vars));
    const baseNames = new Set(Object.values(namedParameters(base)).map((v) => v.name));
    expect(Object.keys(grads).some((n) => baseNames.has(n))).toBe(false);
    for (const s of adapters.sites) {
      expect(tf.tidy(() => tf.max(tf.abs(grads[s.a.name] as tf.Tensor)).dataSync()[0])).toBeGreaterThan(0);
      expect(tf.tidy(() => tf.max(tf.abs(grads[s.b.name] as tf.Tensor)).dataSync()[0])).toBeGreaterThan(0);
    }
    // each member's gradient touches only its own slice: a loss on member 0 leaves the others' B grads zero
    const loss0 = (): tf.Scalar =>
      tf.tidy(() => tf.mean(tf.square(memberSlice(batched(adapters), 0))) as tf.Scalar);
    const g0 = tf.variableGrads(loss0, vars);
    const b = adapters.sites[0]?.b as tf.Variable;
    const gb = g0.grads[b.name] as tf.Tensor;
    expect(tf.tidy(() => tf.max(tf.abs(tf.slice(gb, [0, 0, 0], [1, -1, -1]))).dataSync()[0])).toBeGreaterThan(
      0,
    );
    expect(tf.tidy(() => tf.max(tf.abs(tf.slice(gb, [1, 0, 0], [K - 1, -1, -1]))).dataSync()[0])).toBe(0);
    tf.dispose([value, ...Object.values(grads), g0.value, ...Object.values(g0.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    disposeLoraAdapters(adapters);
  });
});
