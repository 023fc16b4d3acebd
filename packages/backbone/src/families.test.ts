/**
 * The model-family flags (Llama, Qwen2, GPT-NeoX layouts) through every path of the forward pass: shapes
 * and parameter counts, causality, padding, the last-token path, member expansion, hooks, member weights
 * and the KV cache. Their numerics against PyTorch are @quorum/hf's golden tests.
 */
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type GptConfig,
  type GptConfigInput,
  gptParameterShapes,
  paramCount,
  resolveGptConfig,
} from './config.js';
import { generate } from './generate.js';
import {
  disposeGpt,
  type GptParams,
  gptHidden,
  gptLastHidden,
  initGpt,
  type LinearSite,
  lastTokenHidden,
  lmLogits,
  loadGptParameters,
  namedParameters,
  tokenLogProbs,
} from './model.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const base = { vocabSize: 37, contextLength: 24, dModel: 16, nLayers: 2 };
const families: Record<string, GptConfigInput> = {
  // RMSNorm, SwiGLU of width 24 (not a multiple of D), 4 query heads sharing 2 kv heads, no biases, untied.
  llama: {
    ...base,
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
  },
  // Qwen2: q/k/v biases only, and heads wider than D / H (4 × 8 = 32 query dims on a 16-wide stream).
  qwen2: {
    ...base,
    nHeads: 4,
    nKvHeads: 1,
    headDim: 8,
    positional: 'rope',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    mlpHidden: 20,
    attnBias: 'qkv',
    mlpBias: false,
  },
  // GPT-NeoX: exact GELU, a quarter of each head rotated, attention and MLP side by side.
  neox: {
    ...base,
    nHeads: 2,
    positional: 'rope',
    rotaryDims: 2,
    geluApprox: 'none',
    parallelResidual: true,
    tieEmbeddings: false,
  },
};

function randomIds(rng: Rng, B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

/** Larger weights than the GPT-2 init, so differences between variants are far above float noise. */
function init(config: GptConfig, seed: number): GptParams {
  const params = initGpt(config, new Rng(seed));
  for (const [name, v] of Object.entries(namedParameters(params))) {
    if (name.endsWith('.w') || name === 'wte') v.assign(tf.tidy(() => tf.mul(v, 10)));
  }
  return params;
}

describe('family configs', () => {
  it('give parameters only where the family has them (no zero biases), counted exactly', () => {
    const llama = resolveGptConfig(families.llama);
    const shapes = gptParameterShapes(llama);
    expect(Object.keys(shapes).filter((n) => n.endsWith('.b'))).toEqual([]);
    expect(shapes['h.0.attn.q.w']).toEqual([16, 16]);
    expect(shapes['h.0.attn.k.w']).toEqual([16, 8]);
    expect(shapes['h.0.mlp.gate.w']).toEqual([16, 24]);
    expect(shapes['h.0.mlp.proj.w']).toEqual([24, 16]);
    // wte + lm_head + 2 · (norms 2·16 + q 256 + k,v 2·128 + o 256 + gate, up, down 3·384) + ln_f
    expect(paramCount(llama)).toBe(2 * 37 * 16 + 2 * (32 + 256 + 256 + 256 + 3 * 384) + 16);

    const qwen = gptParameterShapes(resolveGptConfig(families.qwen2));
    expect(Object.keys(qwen).filter((n) => n.startsWith('h.0.') && n.endsWith('.b'))).toEqual([
      'h.0.attn.q.b',
      'h.0.attn.k.b',
      'h.0.attn.v.b',
    ]);
    expect(qwen['h.0.attn.q.w']).toEqual([16, 32]);
    expect(qwen['h.0.attn.k.w']).toEqual([16, 8]);
    expect(qwen['h.0.attn.o.w']).toEqual([32, 16]);

    for (const input of Object.values(families)) {
      const config = resolveGptConfig(input);
      const params = initGpt(config, new Rng(1));
      const named = namedParameters(params);
      expect(Object.keys(named)).toEqual(Object.keys(gptParameterShapes(config)));
      expect(Object.values(named).reduce((a, v) => a + v.size, 0)).toBe(paramCount(config));
      disposeGpt(params);
    }
  });

  it('reject inconsistent head counts and rotary sizes, naming the field', () => {
    expect(() => resolveGptConfig({ ...families.llama, nKvHeads: 3 })).toThrow(ConfigError);
    expect(() => resolveGptConfig({ ...families.llama, nKvHeads: 3 })).toThrow(
      /nHeads 4 is not a multiple of nKvHeads 3/,
    );
    expect(() => resolveGptConfig({ ...families.neox, rotaryDims: 3 })).toThrow(/field "rotaryDims"/);
    expect(() => resolveGptConfig({ ...families.neox, rotaryDims: 10 })).toThrow(/rotates 10 of the 8 dims/);
    expect(() => resolveGptConfig({ ...families.neox, positional: 'learned' })).toThrow(
      /rotaryDims 2 is set but positional is "learned"/,
    );
    expect(() => resolveGptConfig({ ...families.llama, norm: 'batchnorm' })).toThrow(/norm/);
  });
});

describe.each(Object.keys(families))('the %s layout', (family) => {
  const config = resolveGptConfig(families[family]);
  const V = config.vocabSize;

  it('runs without leaks, is causal and gives the same last-token hidden with left or right padding', () => {
    const params = init(config, 2);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const rows = randomIds(new Rng(3), 2, 8, V);
      const changed = rows.map((r) => [...r.slice(0, 5), ((r[5] as number) + 1) % V, ...r.slice(6)]);
      const ones = tf.ones([2, 8]) as tf.Tensor2D;
      const a = gptHidden(params, config, tf.tensor2d(rows, [2, 8], 'int32'), ones);
      const b = gptHidden(params, config, tf.tensor2d(changed, [2, 8], 'int32'), ones);
      expect(a.shape).toEqual([2, 8, 16]);
      expect(lmLogits(params, a).shape).toEqual([2, 8, V]);
      expect(maxAbsDiff(tf.slice(a, [0, 0, 0], [2, 5, 16]), tf.slice(b, [0, 0, 0], [2, 5, 16]))).toBe(0);
      expect(
        maxAbsDiff(tf.slice(a, [0, 5, 0], [2, 3, 16]), tf.slice(b, [0, 5, 0], [2, 3, 16])),
      ).toBeGreaterThan(1e-3);

      const seqs = [
        [3, 4, 5, 6, 7, 8],
        [9, 10, 11],
      ];
      const T = 7;
      const right = seqs.map((s) => [...s, ...Array(T - s.length).fill(0)]);
      const left = seqs.map((s) => [...Array(T - s.length).fill(0), ...s]);
      const rmask = tf.tensor2d(seqs.map((s) => Array.from({ length: T }, (_, i) => (i < s.length ? 1 : 0))));
      const lmask = tf.tensor2d(
        seqs.map((s) => Array.from({ length: T }, (_, i) => (i >= T - s.length ? 1 : 0))),
      );
      const lr = lastTokenHidden(
        gptHidden(params, config, tf.tensor2d(right, [2, T], 'int32'), rmask),
        rmask,
      );
      const ll = lastTokenHidden(gptHidden(params, config, tf.tensor2d(left, [2, T], 'int32'), lmask), lmask);
      expect(maxAbsDiff(lr, ll)).toBeLessThan(1e-4);
      const alone = gptHidden(
        params,
        config,
        tf.tensor2d([seqs[1] as number[]], [1, 3], 'int32'),
        tf.ones([1, 3]),
      );
      expect(
        maxAbsDiff(
          tf.reshape(tf.slice(alone, [0, 2, 0], [1, 1, 16]), [1, 16]),
          tf.slice(lr, [1, 0], [1, 16]),
        ),
      ).toBeLessThan(1e-4);
    });
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });

  it('gives the full forward from the last-token path and member expansion, values and gradients', () => {
    const params = init(config, 4);
    const maskRows = [
      [1, 1, 1, 1, 0, 0],
      [0, 0, 1, 1, 1, 1],
      [1, 0, 1, 1, 1, 0],
    ];
    const ids = tf.tensor2d(randomIds(new Rng(5), 3, 6, V), [3, 6], 'int32');
    const mask = tf.tensor2d(maskRows);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      for (const expand of [undefined, { members: 2, atLayer: 1 }]) {
        const full = lastTokenHidden(gptHidden(params, config, ids, mask, { expand }), mask); // [B', D]
        const last = gptLastHidden(params, config, ids, mask, { expand }); // [B', D]
        expect(maxAbsDiff(last, full)).toBeLessThan(1e-4);
      }
      const expanded = gptHidden(params, config, ids, mask, { expand: { members: 3, atLayer: 0 } });
      const plain = gptHidden(params, config, ids, mask);
      for (let m = 0; m < 3; m++)
        expect(maxAbsDiff(tf.slice(expanded, [m * 3, 0, 0], [3, 6, 16]), plain)).toBeLessThan(1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);

    const w = tf.tensor2d(
      Array.from({ length: 16 }, (_, i) => Math.sin(i + 1)),
      [16, 1],
    );
    // the LM head plays no part in hidden states
    const vars = Object.entries(namedParameters(params))
      .filter(([n]) => n !== 'lm_head.w')
      .map(([, v]) => v);
    const lossOf = (fast: boolean) => (): tf.Scalar =>
      tf.tidy(() => {
        const h = fast
          ? gptLastHidden(params, config, ids, mask)
          : lastTokenHidden(gptHidden(params, config, ids, mask), mask);
        return tf.sum(tf.square(tf.matMul(h, w))) as tf.Scalar;
      });
    const a = tf.variableGrads(lossOf(true), vars);
    const b = tf.variableGrads(lossOf(false), vars);
    for (const v of vars) {
      const g = b.grads[v.name] as tf.Tensor;
      const scale = Math.max(
        tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0] as number),
        1e-3,
      );
      expect(maxAbsDiff(a.grads[v.name] as tf.Tensor, g) / scale, v.name).toBeLessThan(1e-3);
    }
    tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads), ids, mask, w]);
    disposeGpt(params);
  });

  it("calls the hook and member weights at q, k, v, o, (SwiGLU's gate,) fc and proj with their shapes", () => {
    const params = init(config, 6);
    tf.tidy(() => {
      const ids = tf.tensor2d(randomIds(new Rng(7), 2, 5, V), [2, 5], 'int32');
      const mask = tf.ones([2, 5]) as tf.Tensor2D;
      const sites: string[] = [];
      const hook = (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
        if (site.layer === 0) sites.push(`${site.module} [${x.shape[1]}→${y.shape[1]}]`);
        return y;
      };
      const plain = gptHidden(params, config, ids, mask);
      expect(maxAbsDiff(gptHidden(params, config, ids, mask, { linearHook: hook }), plain)).toBe(0);
      const named = namedParameters(params);
      const dim = (n: string, i: number): number => named[`h.0.${n}.w`]?.shape[i] as number;
      const gate = config.mlp === 'swiglu' ? ['mlp.gate'] : [];
      expect(sites).toEqual(
        ['attn.q', 'attn.k', 'attn.v', 'attn.o', ...gate, 'mlp.fc', 'mlp.proj'].map(
          (n) => `${n.split('.')[1]} [${dim(n, 0)}→${dim(n, 1)}]`,
        ),
      );
      // member weights that repeat the shared weight for k = 2 members give the plain model twice
      const expanded = gptHidden(params, config, ids, mask, {
        expand: { members: 2, atLayer: 0 },
        memberWeights: (_site, wt) => tf.stack([wt, wt]) as tf.Tensor3D,
      });
      expect(maxAbsDiff(tf.slice(expanded, [2, 0, 0], [2, 5, 16]), plain)).toBeLessThan(1e-5);
    });
    disposeGpt(params);
  });

  it('generates the same tokens with and without the KV cache', () => {
    const params = init(config, 8);
    const prompts = [
      [1, 2, 3, 4, 5],
      [6, 7],
      [8, 9, 10],
    ];
    const before = tf.memory().numTensors;
    const cached = generate(params, config, prompts, { maxNewTokens: 8, temperature: 0 });
    const recomputed = generate(params, config, prompts, {
      maxNewTokens: 8,
      temperature: 0,
      useCache: false,
    });
    expect(cached).toEqual(recomputed);
    expect(new Set(cached.tokens.flat()).size).toBeGreaterThan(3);
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });

  it('loads its named parameters back, and tokenLogProbs reads them', () => {
    const params = init(config, 9);
    const loaded = loadGptParameters(config, namedParameters(params));
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
      const mask = tf.ones([1, 4]) as tf.Tensor2D;
      expect(
        maxAbsDiff(tokenLogProbs(params, config, ids, mask), tokenLogProbs(loaded, config, ids, mask)),
      ).toBe(0);
    });
    disposeGpt(loaded);
    disposeGpt(params);
  });
});

describe('family flags', () => {
  const ids = [[5, 6, 7, 8, 9, 10]];

  function hiddenOf(config: GptConfig, params: GptParams): tf.Tensor3D {
    return tf.tidy(() => gptHidden(params, config, tf.tensor2d(ids, [1, 6], 'int32'), tf.ones([1, 6])));
  }

  it('grouped-query attention equals full attention with each kv head repeated for its query heads', () => {
    const gqa = resolveGptConfig(families.llama); // 4 query heads, 2 kv heads of size 4
    const mha = resolveGptConfig({ ...families.llama, nKvHeads: 4 });
    const params = init(gqa, 11);
    const named = namedParameters(params);
    // kv head j serves query heads 2j and 2j+1 (HF's repeat_kv): repeat its 4 columns in place
    const repeatKv = (w: tf.Tensor): tf.Tensor =>
      tf.tidy(() => tf.reshape(tf.tile(tf.reshape(w, [16, 2, 1, 4]), [1, 1, 2, 1]), [16, 16]));
    const made: tf.Tensor[] = [];
    const withKv = (f: (w: tf.Tensor) => tf.Tensor): Record<string, tf.Tensor> => {
      const tensors: Record<string, tf.Tensor> = { ...named };
      for (const name of Object.keys(named).filter((n) => /attn\.[kv]\.w$/.test(n))) {
        tensors[name] = f(named[name] as tf.Tensor);
        made.push(tensors[name] as tf.Tensor);
      }
      return tensors;
    };
    const full = loadGptParameters(mha, withKv(repeatKv));
    const a = hiddenOf(gqa, params);
    const b = hiddenOf(mha, full);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    // a wrong grouping (kv head j for query heads j and j+2) gives something else
    const wrong = loadGptParameters(
      mha,
      withKv((w) => tf.tile(w, [1, 2])),
    );
    const c = hiddenOf(mha, wrong);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-2);
    tf.dispose([a, b, c, ...made]);
    for (const p of [params, full, wrong]) disposeGpt(p);
  });

  it('each flag changes the function (parallel residual, exact GELU, partial rotary, rope theta)', () => {
    const params = init(resolveGptConfig(families.neox), 12);
    const pairs: [GptConfigInput, GptConfigInput][] = [
      [{}, { parallelResidual: false }],
      [{}, { geluApprox: 'tanh' }],
      [{}, { rotaryDims: 8 }],
      // one rotated pair turns at 1 rad per position whatever the base: compare with more pairs
      [{ rotaryDims: 4 }, { rotaryDims: 4, ropeTheta: 100 }],
    ];
    for (const [x, y] of pairs) {
      const a = hiddenOf(resolveGptConfig({ ...families.neox, ...x }), params);
      const b = hiddenOf(resolveGptConfig({ ...families.neox, ...y }), params);
      expect(maxAbsDiff(a, b), JSON.stringify(y)).toBeGreaterThan(1e-4);
      tf.dispose([a, b]);
    }
    disposeGpt(params);
  });
});
