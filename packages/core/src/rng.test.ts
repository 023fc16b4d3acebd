import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';

describe('Rng', () => {
  it('is reproducible for the same seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 100 }, () => a.nextUint32());
    const ys = Array.from({ length: 100 }, () => b.nextUint32());
    const zs = Array.from({ length: 100 }, () => c.nextUint32());
    expect(xs).toEqual(ys);
    expect(xs).not.toEqual(zs);
  });

  it('restores from its state, including a pending normal deviate', () => {
    const a = new Rng(7);
    a.normal(); // leaves a spare
    const saved = JSON.parse(JSON.stringify(a.state()));
    const expected = [a.normal(), a.uniform(), a.int(10)];
    const b = Rng.fromState(saved);
    expect([b.normal(), b.uniform(), b.int(10)]).toEqual(expected);
  });

  it('forks independent, reproducible child streams without advancing the parent', () => {
    const a = new Rng(1);
    const before = a.state();
    const child1 = a.fork('member-0');
    const child2 = a.fork('member-1');
    expect(a.state()).toEqual(before);
    expect(child1.uniform()).not.toBe(child2.uniform());
    expect(new Rng(1).fork('member-0').uniform()).toBe(new Rng(1).fork('member-0').uniform());
  });

  it('draws uniform values in [0, 1) with the right mean and normals with mean 0 and std 1', () => {
    const rng = new Rng(3);
    const n = 20_000;
    let sum = 0;
    let sumN = 0;
    let sumN2 = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      sum += u;
      const z = rng.normal();
      sumN += z;
      sumN2 += z * z;
    }
    expect(sum / n).toBeCloseTo(0.5, 1);
    expect(sumN / n).toBeCloseTo(0, 1);
    expect(Math.sqrt(sumN2 / n)).toBeCloseTo(1, 1);
  });

  it('shuffles into a permutation, reproducibly', () => {
    const p = new Rng(5).permutation(50);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Rng(5).permutation(50)).toEqual(p);
    expect(p).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('rejects bad arguments', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/finite/);
    expect(() => new Rng(1).int(0)).toThrow(/positive integer/);
  });
});
