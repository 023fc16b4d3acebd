import { builtinBackendRegistry, CheckpointError, ConfigError, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, gptPreset, paramCount, resolveGptConfig } from './config.js';
import {
  disposeGpt,
  gptHidden,
  gptLastHidden,
  initGpt,
  type LinearSite,
  lastTokenHidden,
  lmLogits,
  loadGptParameters,
  namedParameters,
  tokenEntropy,
  tokenLogProbs,
} from './model.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const tiny = (over: Partial<GptConfig> = {}): GptConfig =>
  resolveGptConfig({ vocabSize: 37, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2, ...over });

function randomIds(rng: Rng, B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

describe('config', () => {
  it('counts parameters of the presets', () => {
    const nano = gptPreset('nano');
    // wte 4096·64 + wpe 128·64 + 2 layers · (12·64² + 13·64) + ln_f 2·64
    expect(paramCount(nano)).toBe(4096 * 64 + 128 * 64 + 2 * (12 * 64 * 64 + 13 * 64) + 128);
    const micro = gptPreset('micro');
    expect(paramCount(micro)).toBe(4096 * 128 + 128 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 256);
    expect(paramCount(gptPreset('micro', { tieEmbeddings: false }))).toBe(paramCount(micro) + 4096 * 128);
    expect(paramCount(gptPreset('micro', { positional: 'rope' }))).toBe(paramCount(micro) - 128 * 128);
    expect(paramCount(gptPreset('mini'))).toBeGreaterThan(paramCount(micro));
    expect(paramCount(gptPreset('small'))).toBeGreaterThan(paramCount(gptPreset('mini')));
  });

  it('names the bad field', () => {
    expect(() => resolveGptConfig({ dModel: 10, nHeads: 3 })).toThrow(ConfigError);
    expect(() => resolveGptConfig({ dModel: 10, nHeads: 3 })).toThrow(/nHeads/);
    expect(() => resolveGptConfig({ positional: 'alibi' })).toThrow(/positional/);
    expect(() => resolveGptConfig({ nLayer: 2 })).toThrow(/nLayer/);
  });

  it('matches the parameter count of the built model', () => {
    for (const config of [tiny(), tiny({ positional: 'rope', tieEmbeddings: false })]) {
      const params = initGpt(config, new Rng(1));
      const n = Object.values(namedParameters(params)).reduce((a, v) => a + v.size, 0);
      expect(n).toBe(paramCount(config));
      disposeGpt(params);
    }
  });
});

describe.each(['learned', 'rope'] as const)('gpt with %s positions', (positional) => {
  const config = tiny({ positional });

  it('returns hidden [B,T,D], logits [B,T,V] and log-probs [B,T-1] without leaks', () => {
    const params = initGpt(config, new Rng(2));
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const ids = tf.tensor2d(randomIds(new Rng(3), 3, 7, config.vocabSize), [3, 7], 'int32');
      const mask = tf.ones([3, 7]) as tf.Tensor2D;
      const hidden = gptHidden(params, config, ids, mask);
      expect(hidden.shape).toEqual([3, 7, 16]);
      const logits = lmLogits(params, hidden);
      expect(logits.shape).toEqual([3, 7, 37]);
      const lp = tokenLogProbs(params, config, ids, mask);
      expect(lp.shape).toEqual([3, 6]);
      const lpArr = lp.arraySync();
      expect(lpArr.flat().every((v) => v < 0 && Number.isFinite(v))).toBe(true);
      const ent = tokenEntropy(logits);
      expect(ent.shape).toEqual([3, 7]);
      // a random init is near uniform: entropy close to log V
      expect(Math.abs((ent.dataSync()[0] as number) - Math.log(37))).toBeLessThan(0.1);
    });
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });

  it('is causal: a later token does not change earlier positions', () => {
    const params = initGpt(config, new Rng(4));
    tf.tidy(() => {
      const rows = randomIds(new Rng(5), 2, 8, config.vocabSize);
      const changed = rows.map((r) => [...r.slice(0, 5), (r[5]! + 1) % 37, ...r.slice(6)]);
      const mask = tf.ones([2, 8]) as tf.Tensor2D;
      const a = gptHidden(params, config, tf.tensor2d(rows, [2, 8], 'int32'), mask);
      const b = gptHidden(params, config, tf.tensor2d(changed, [2, 8], 'int32'), mask);
      expect(maxAbsDiff(tf.slice(a, [0, 0, 0], [2, 5, 16]), tf.slice(b, [0, 0, 0], [2, 5, 16]))).toBe(0);
      expect(
        maxAbsDiff(tf.slice(a, [0, 5, 0], [2, 3, 16]), tf.slice(b, [0, 5, 0], [2, 3, 16])),
      ).toBeGreaterThan(1e-4);
    });
    disposeGpt(params);
  });

  it('gives the same last-token hidden with left or right padding', () => {
    const params = initGpt(config, new Rng(6));
    tf.tidy(() => {
      const seqs = [
        [3, 4, 5, 6, 7, 8],
        [9, 10, 11],
        [12, 13, 14, 15, 16],
      ];
      const T = 8;
      const pad = 0;
      const right = seqs.map((s) => [...s, ...Array(T - s.length).fill(pad)]);
      const left = seqs.map((s) => [...Array(T - s.length).fill(pad), ...s]);
      const rmask = seqs.map((s) => Array.from({ length: T }, (_, i) => (i < s.length ? 1 : 0)));
      const lmask = seqs.map((s) => Array.from({ length: T }, (_, i) => (i >= T - s.length ? 1 : 0)));
      const hr = gptHidden(params, config, tf.tensor2d(right, [3, T], 'int32'), tf.tensor2d(rmask));
      const hl = gptHidden(params, config, tf.tensor2d(left, [3, T], 'int32'), tf.tensor2d(lmask));
      const lr = lastTokenHidden(hr, tf.tensor2d(rmask));
      const ll = lastTokenHidden(hl, tf.tensor2d(lmask));
      expect(lr.shape).toEqual([3, 16]);
      expect(maxAbsDiff(lr, ll)).toBeLessThan(1e-5);
      // and equal to running each sequence alone, unpadded
      seqs.forEach((s, i) => {
        const alone = gptHidden(
          params,
          config,
          tf.tensor2d([s], [1, s.length], 'int32'),
          tf.ones([1, s.length]) as tf.Tensor2D,
        );
        const last = tf.slice(alone, [0, s.length - 1, 0], [1, 1, 16]).reshape([1, 16]);
        expect(maxAbsDiff(last, tf.slice(lr, [i, 0], [1, 16]))).toBeLessThan(1e-5);
      });
    });
    disposeGpt(params);
  });

  it('calls the hook at every linear site; an identity hook changes nothing', () => {
    const params = initGpt(config, new Rng(7));
    tf.tidy(() => {
      const ids = tf.tensor2d(randomIds(new Rng(8), 2, 5, 37), [2, 5], 'int32');
      const mask = tf.ones([2, 5]) as tf.Tensor2D;
      const sites: string[] = [];
      const hook = (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
        sites.push(`${site.layer}.${site.module}`);
        expect(x.shape[0]).toBe(10);
        expect(y.shape[0]).toBe(10);
        return y;
      };
      const base = gptHidden(params, config, ids, mask);
      const hooked = gptHidden(params, config, ids, mask, { linearHook: hook });
      expect(sites).toEqual([
        '0.q',
        '0.k',
        '0.v',
        '0.o',
        '0.fc',
        '0.proj',
        '1.q',
        '1.k',
        '1.v',
        '1.o',
        '1.fc',
        '1.proj',
      ]);
      expect(maxAbsDiff(base, hooked)).toBe(0);
    });
    disposeGpt(params);
  });

  it('expands to k identical member copies (member-major) at any layer', () => {
    const params = initGpt(config, new Rng(9));
    tf.tidy(() => {
      const B = 2;
      const T = 5;
      const ids = tf.tensor2d(randomIds(new Rng(10), B, T, 37), [B, T], 'int32');
      const mask = tf.tensor2d([
        [1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1],
      ]);
      const base = gptHidden(params, config, ids, mask);
      for (const atLayer of [0, 1, 2]) {
        const rows: number[] = [];
        const hook = (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
          if (site.module === 'q') rows.push(x.shape[0]);
          return y;
        };
        const h = gptHidden(params, config, ids, mask, { expand: { members: 3, atLayer }, linearHook: hook });
        expect(h.shape).toEqual([3 * B, T, 16]);
        expect(rows).toEqual([0, 1].map((l) => (l < atLayer ? B * T : 3 * B * T)));
        for (let m = 0; m < 3; m++) {
          expect(maxAbsDiff(tf.slice(h, [m * B, 0, 0], [B, T, 16]), base)).toBeLessThan(1e-6);
        }
        const last = lastTokenHidden(h, mask);
        expect(last.shape).toEqual([3 * B, 16]);
        const lp = tokenLogProbs(params, config, ids, mask, { expand: { members: 3, atLayer } });
        expect(lp.shape).toEqual([3 * B, T - 1]);
      }
    });
    disposeGpt(params);
  });
});

describe.each(['learned', 'rope'] as const)('gptLastHidden with %s positions', (positional) => {
  const config = tiny({ positional });
  // right padding, left padding, a hole, no padding, all padding (row 4: its "last token" is position 0)
  const maskRows = [
    [1, 1, 1, 1, 0, 0],
    [0, 0, 1, 1, 1, 1],
    [1, 0, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 0],
  ];
  const B = maskRows.length;
  const T = 6;

  it('equals the last real token of the full forward, with and without member expansion, and runs q on B rows', () => {
    const params = initGpt(config, new Rng(21));
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const ids = tf.tensor2d(randomIds(new Rng(22), B, T, config.vocabSize), [B, T], 'int32');
      const mask = tf.tensor2d(maskRows);
      for (const expand of [undefined, { members: 2, atLayer: 1 }, { members: 2, atLayer: 2 }]) {
        const rows: Record<string, number> = {};
        const hook = (site: LinearSite, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D => {
          rows[`${site.layer}.${site.module}`] = x.shape[0];
          return y;
        };
        const full = lastTokenHidden(gptHidden(params, config, ids, mask, { expand }), mask); // [B', D]
        const last = gptLastHidden(params, config, ids, mask, { expand, linearHook: hook }); // [B', D]
        const k = expand?.members ?? 1;
        expect(last.shape).toEqual([k * B, 16]);
        expect(maxAbsDiff(last, full)).toBeLessThan(1e-5);
        const kTop = expand !== undefined && expand.atLayer <= 1 ? k : 1;
        expect(rows['1.q']).toBe(kTop * B); // the top block's queries: one per row
        expect(rows['1.k']).toBe(kTop * B * T); // its keys: every token
        expect(rows['1.fc']).toBe(kTop * B);
        expect(rows['0.q']).toBe(B * T);
      }
    });
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });

  it('gives the gradients of the full forward', () => {
    const params = initGpt(config, new Rng(23));
    const ids = tf.tensor2d(randomIds(new Rng(24), B, T, config.vocabSize), [B, T], 'int32');
    const mask = tf.tensor2d(maskRows.slice(0, 4));
    const ids4 = tf.slice(ids, [0, 0], [4, T]) as tf.Tensor2D;
    const w = tf.tensor1d(Array.from({ length: 16 }, (_, i) => Math.sin(i + 1)));
    const vars = Object.values(namedParameters(params));
    const lossOf = (fast: boolean) => (): tf.Scalar =>
      tf.tidy(() => {
        const h = fast
          ? gptLastHidden(params, config, ids4, mask)
          : lastTokenHidden(gptHidden(params, config, ids4, mask), mask); // [4, D]
        return tf.sum(tf.square(tf.matMul(h, tf.reshape(w, [16, 1])))) as tf.Scalar;
      });
    const a = tf.variableGrads(lossOf(true), vars);
    const b = tf.variableGrads(lossOf(false), vars);
    for (const v of vars) {
      const g = b.grads[v.name] as tf.Tensor;
      const scale = Math.max(
        tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0] as number),
        1e-3,
      );
      expect(maxAbsDiff(a.grads[v.name] as tf.Tensor, g) / scale).toBeLessThan(1e-4);
    }
    tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads), ids, ids4, mask, w]);
    disposeGpt(params);
  });
});

describe('dropout', () => {
  it('is seeded by the Rng and off without one', () => {
    const config = tiny({ dropout: 0.2 });
    const params = initGpt(config, new Rng(1));
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
      const mask = tf.ones([1, 4]) as tf.Tensor2D;
      const a = gptHidden(params, config, ids, mask, { dropoutRng: new Rng(5) });
      const b = gptHidden(params, config, ids, mask, { dropoutRng: new Rng(5) });
      const c = gptHidden(params, config, ids, mask, { dropoutRng: new Rng(6) });
      const off = gptHidden(params, config, ids, mask);
      const offAgain = gptHidden(params, resolveGptConfig({ ...config, dropout: 0 }), ids, mask);
      expect(maxAbsDiff(a, b)).toBe(0);
      expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(off, offAgain)).toBe(0);
    });
    disposeGpt(params);
  });
});

describe('errors', () => {
  it('rejects too-long sequences and bad inputs with the values', () => {
    const config = tiny();
    const params = initGpt(config, new Rng(1));
    tf.tidy(() => {
      const ids = tf.zeros([1, 20], 'int32') as tf.Tensor2D;
      expect(() => gptHidden(params, config, ids, tf.ones([1, 20]) as tf.Tensor2D)).toThrow(
        'sequence of length 20 exceeds context 16',
      );
      const fids = tf.zeros([1, 4]) as tf.Tensor2D;
      expect(() => gptHidden(params, config, fids, tf.ones([1, 4]) as tf.Tensor2D)).toThrow(ConfigError);
      const ok = tf.zeros([1, 4], 'int32') as tf.Tensor2D;
      expect(() => gptHidden(params, config, ok, ok, { expand: { members: 2, atLayer: 5 } })).toThrow(
        /atLayer 5/,
      );
    });
    disposeGpt(params);
  });

  it('loads named tensors and checks names and shapes', () => {
    const config = tiny();
    const params = initGpt(config, new Rng(11));
    const named = namedParameters(params);
    const loaded = loadGptParameters(config, named);
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
      const mask = tf.ones([1, 3]) as tf.Tensor2D;
      expect(maxAbsDiff(gptHidden(params, config, ids, mask), gptHidden(loaded, config, ids, mask))).toBe(0);
    });
    const { wte: _wte, ...noWte } = named;
    expect(() => loadGptParameters(config, noWte)).toThrow(CheckpointError);
    expect(() => loadGptParameters(config, noWte)).toThrow(/"wte"/);
    const wrong = tf.zeros([3, 3]);
    expect(() => loadGptParameters(config, { ...named, 'h.1.attn.q.w': wrong })).toThrow(
      'tensor "h.1.attn.q.w" has shape [3, 3], the config needs [16, 16]',
    );
    expect(() => loadGptParameters(config, { ...named, extra: wrong })).toThrow(/unexpected tensors "extra"/);
    wrong.dispose();
    disposeGpt(params);
    disposeGpt(loaded);
  });
});
