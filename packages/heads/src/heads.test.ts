import { QuorumError, Rng } from '@quorum/core';
import { expectArraysClose, expectNoTensorLeaks, randomNormalTensor, useTestBackend } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  disposeHead,
  headFromParams,
  headParams,
  initMultiHead,
  initRewardHead,
  initValueHead,
  joinHeads,
  memberHeadRewards,
  multiHeadRewards,
  rewardHeadForward,
  splitMultiHead,
  valueHeadForward,
} from './heads.js';

useTestBackend();

const D = 6;
const K = 3;
const B = 4;

describe('reward head', () => {
  it('computes h·w + b on a hand-computed case', () => {
    expectNoTensorLeaks(() => {
      const head = { w: tf.tensor2d([[1], [2], [-1]]), b: tf.tensor1d([0.5]) }; // D = 3
      const h = tf.tensor2d([
        [1, 1, 1],
        [0, 2, 4],
      ]); // [2, 3]
      const r = rewardHeadForward(head, h);
      expect(r.shape).toEqual([2]);
      expectArraysClose(r.dataSync(), [2.5, 0.5]);
      tf.dispose([r, h]);
      disposeHead(head);
    });
  });

  it('initialises from the seed with std 1/√(D+1) and zero bias', () => {
    expectNoTensorLeaks(() => {
      const a = initRewardHead(400, new Rng(3));
      const b = initRewardHead(400, new Rng(3));
      expect(a.w.shape).toEqual([400, 1]);
      expect(a.b.shape).toEqual([1]);
      expectArraysClose(a.w.dataSync(), b.w.dataSync(), { atol: 0, rtol: 0 });
      expect(a.b.dataSync()[0]).toBe(0);
      const std = Math.sqrt(tf.tidy(() => tf.moments(a.w).variance.dataSync()[0] as number));
      expect(std).toBeGreaterThan(0.8 / Math.sqrt(401));
      expect(std).toBeLessThan(1.2 / Math.sqrt(401));
      disposeHead(a);
      disposeHead(b);
    });
  });

  it('rejects hidden states of the wrong width', () => {
    const head = initRewardHead(D, new Rng(1));
    const h = tf.zeros([2, D + 1]) as tf.Tensor2D;
    expect(() => rewardHeadForward(head, h)).toThrow(/\[B, D\] with D = 6, got shape \[2, 7\]/);
    expect(() => rewardHeadForward(head, h)).toThrow(QuorumError);
    tf.dispose(h);
    disposeHead(head);
  });
});

describe('multi-head', () => {
  it('gives [k, B] equal to k single heads', () => {
    expectNoTensorLeaks(() => {
      const multi = initMultiHead(D, K, new Rng(7));
      tf.tidy(() => {
        // non-zero biases, so the bias layout is checked too
        const b = tf.tensor1d([0.1, -0.2, 0.3]);
        const h = randomNormalTensor([B, D], 11) as tf.Tensor2D; // [B, D]
        const r = multiHeadRewards(multi.w, b, h); // [k, B]
        expect(r.shape).toEqual([K, B]);
        const heads = splitMultiHead({ w: multi.w, b });
        const separate = tf.stack(heads.map((head) => rewardHeadForward(head, h))); // [k, B]
        expectArraysClose(r.dataSync(), separate.dataSync());
      });
      disposeHead(multi);
    });
  });

  it('draws member m’s head from rng.fork("member-m/head"), whatever k is', () => {
    expectNoTensorLeaks(() => {
      const rng = new Rng(5);
      const three = initMultiHead(D, 3, rng);
      const five = initMultiHead(D, 5, rng);
      const single = initRewardHead(D, rng.fork('member-2/head'));
      tf.tidy(() => {
        expectArraysClose(tf.slice(five.w, [0, 0], [D, 3]).dataSync(), three.w.dataSync(), {
          atol: 0,
          rtol: 0,
        });
        expectArraysClose(tf.slice(three.w, [0, 2], [D, 1]).dataSync(), single.w.dataSync(), {
          atol: 0,
          rtol: 0,
        });
      });
      [three, five, single].forEach(disposeHead);
    });
  });

  it('splits into k heads and joins back to the same tensors', () => {
    expectNoTensorLeaks(() => {
      const multi = initMultiHead(D, K, new Rng(9));
      const heads = splitMultiHead(multi);
      expect(heads).toHaveLength(K);
      expect(heads[1]?.w.shape).toEqual([D, 1]);
      const joined = joinHeads(heads);
      expectArraysClose(joined.w.dataSync(), multi.w.dataSync(), { atol: 0, rtol: 0 });
      expectArraysClose(joined.b.dataSync(), multi.b.dataSync(), { atol: 0, rtol: 0 });
      [multi, joined, ...heads].forEach(disposeHead);
    });
    expect(() => joinHeads([])).toThrow(/at least one head/);
  });

  it('reads a single head by name and checks shapes', () => {
    expectNoTensorLeaks(() => {
      const head = initRewardHead(D, new Rng(4));
      const params = headParams(head, 'member-1.head');
      expect(Object.keys(params)).toEqual(['member-1.head.w', 'member-1.head.b']);
      const back = headFromParams(params, 'member-1.head');
      expectArraysClose(back.w.dataSync(), head.w.dataSync(), { atol: 0, rtol: 0 });
      const bad = { 'head.w': params['member-1.head.w'] as tf.Tensor, 'head.b': tf.zeros([2]) };
      expect(() => headFromParams(bad)).toThrow(/"head.b" has shape \[2\], expected \[1\]/);
      tf.dispose([...Object.values(params), bad['head.b']]);
      [head, back].forEach(disposeHead);
    });
  });
});

describe('member-expanded heads', () => {
  it('equal the multi-head on tiled input', () => {
    expectNoTensorLeaks(() => {
      const multi = initMultiHead(D, K, new Rng(13));
      tf.tidy(() => {
        const b = tf.tensor1d([1, 2, 3]);
        const h = randomNormalTensor([B, D], 17) as tf.Tensor2D; // [B, D]
        const tiled = tf.tile(h, [K, 1]) as tf.Tensor2D; // [k·B, D], member-major
        const expanded = memberHeadRewards(multi.w, b, tiled); // [k, B]
        const shared = multiHeadRewards(multi.w, b, h); // [k, B]
        expect(expanded.shape).toEqual([K, B]);
        expectArraysClose(expanded.dataSync(), shared.dataSync());
      });
      disposeHead(multi);
    });
  });

  it('applies member m’s head to member m’s rows only', () => {
    tf.tidy(() => {
      const w = tf.tensor2d([
        [1, 10],
        [0, 0],
      ]); // [D = 2, k = 2]
      const b = tf.tensor1d([0, 0.5]);
      const h = tf.tensor2d([
        [1, 0],
        [2, 0],
        [3, 0],
        [4, 0],
      ]); // [k·B = 4, 2]: member 0 rows 1, 2; member 1 rows 3, 4
      expectArraysClose(memberHeadRewards(w, b, h).dataSync(), [1, 2, 30.5, 40.5]);
      expect(() => memberHeadRewards(w, b, tf.zeros([3, 2]) as tf.Tensor2D)).toThrow(
        /do not split into k = 2/,
      );
    });
  });
});

describe('value head', () => {
  it('maps [B, T, D] to [B, T], equal to the reward head at every token', () => {
    expectNoTensorLeaks(() => {
      const head = initValueHead(D, new Rng(21));
      tf.tidy(() => {
        const h = randomNormalTensor([2, 5, D], 23) as tf.Tensor3D; // [B, T, D]
        const v = valueHeadForward(head, h); // [B, T]
        expect(v.shape).toEqual([2, 5]);
        const flat = rewardHeadForward(head, tf.reshape(h, [10, D]) as tf.Tensor2D); // [B·T]
        expectArraysClose(v.dataSync(), flat.dataSync());
        expect(() => valueHeadForward(head, tf.zeros([2, D]) as unknown as tf.Tensor3D)).toThrow(
          /\[B, T, D\]/,
        );
      });
      disposeHead(head);
    });
  });
});

describe('training', () => {
  it('gives gradients for variable heads through the member-expanded path', () => {
    expectNoTensorLeaks(() => {
      const multi = initMultiHead(D, K, new Rng(31), { variable: true });
      expect(multi.w).toBeInstanceOf(tf.Variable);
      const h = randomNormalTensor([K * B, D], 37) as tf.Tensor2D;
      const { value, grads } = tf.variableGrads(
        () => tf.sum(memberHeadRewards(multi.w, multi.b, h)) as tf.Scalar,
        [multi.w as tf.Variable, multi.b as tf.Variable],
      );
      // d/db_m of the sum over member m's B rewards is B
      expectArraysClose((grads[(multi.b as tf.Variable).name] as tf.Tensor).dataSync(), [B, B, B]);
      expect((grads[(multi.w as tf.Variable).name] as tf.Tensor).shape).toEqual([D, K]);
      tf.dispose([value, h, ...Object.values(grads)]);
      disposeHead(multi);
    });
  });
});
