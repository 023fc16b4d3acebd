import { Rng } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { seededSubset } from './subset.js';

describe('seededSubset', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);

  it('draws the same items in either order; keepOrder keeps the original order', () => {
    const drawn = seededSubset(items, 10, new Rng(4).fork('x'), { keepOrder: false });
    const kept = seededSubset(items, 10, new Rng(4).fork('x'), { keepOrder: true });
    expect([...drawn].sort((a, b) => a - b)).toEqual(kept);
    expect(drawn).not.toEqual(kept); // the drawn order is a permutation's, not sorted
    expect(new Set(drawn).size).toBe(10);
  });

  it('returns a copy of everything when the limit is absent or not below the count', () => {
    const rng = new Rng(1);
    expect(seededSubset(items, undefined, rng, { keepOrder: false })).toEqual(items);
    const all = seededSubset(items, 50, rng, { keepOrder: true });
    expect(all).toEqual(items);
    expect(all).not.toBe(items);
  });
});
