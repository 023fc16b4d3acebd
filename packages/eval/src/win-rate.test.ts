import { describe, expect, it } from 'vitest';
import { meanStderr, outcomeOf, overoptimizationCurve, seedSpread, winRate } from './win-rate.js';

describe('winRate', () => {
  it('counts draws half and reports the stderr over items (hand-computed)', () => {
    // prefs 1, 1, 0.5, 0: mean 0.625; deviations .375, .375, -.125, -.625 → ss = 0.6875; sd = √(0.6875 / 3)
    const r = winRate(['win', 'win', 'tie', 'loss']);
    expect(r.winRate).toBeCloseTo(62.5, 10);
    expect(r.stderr).toBeCloseTo((100 * Math.sqrt(0.6875 / 3)) / 2, 10);
    expect(r).toMatchObject({ n: 4, wins: 2, ties: 1, losses: 1 });
  });

  it('is 100 ± 0 when every item wins and 50 ± 0 when every item ties', () => {
    expect(winRate(['win', 'win', 'win'])).toMatchObject({ winRate: 100, stderr: 0 });
    expect(winRate(['tie', 'tie'])).toMatchObject({ winRate: 50, stderr: 0, ties: 2 });
  });

  it('takes preferences in [0, 1] (weighted win rate)', () => {
    const r = winRate([0.9, 0.1]);
    expect(r.winRate).toBeCloseTo(50, 10);
    // sd = √((0.4² + 0.4²) / 1) = 0.5657; stderr = sd / √2 = 0.4
    expect(r.stderr).toBeCloseTo(40, 10);
    expect(r).toMatchObject({ wins: 1, losses: 1, ties: 0 });
  });

  it('gives NaN stderr for one item and refuses no items or bad outcomes', () => {
    expect(Number.isNaN(winRate(['win']).stderr)).toBe(true);
    expect(() => winRate([])).toThrow(/no outcomes/);
    expect(() => winRate([1.5])).toThrow(/outcomes\[0\]/);
  });

  it('reads outcomes from verdicts', () => {
    expect(outcomeOf({ winner: 'a', p: 0.7 })).toBe('win');
    expect(outcomeOf({ winner: 'a', p: 0.7 }, 'probability')).toBe(0.7);
    expect(outcomeOf({ winner: 'tie' }, 'probability')).toBe('tie');
    expect(outcomeOf({ winner: 'b' })).toBe('loss');
  });
});

describe('meanStderr and seedSpread', () => {
  it('matches hand-computed values', () => {
    const m = meanStderr([2, 4, 4, 4, 5, 5, 7, 9]); // mean 5, ss 32, sd √(32/7)
    expect(m.mean).toBe(5);
    expect(m.sd).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(m.stderr).toBeCloseTo(Math.sqrt(32 / 7) / Math.sqrt(8), 12);
    expect(() => meanStderr([1, Number.NaN])).toThrow(/values\[1\]/);
  });

  it('reports the spread over seeds', () => {
    expect(seedSpread([40, 50, 60])).toEqual({ mean: 50, sd: 10, min: 40, max: 60, seeds: 3 });
  });
});

describe('overoptimizationCurve', () => {
  it('groups by series, sorts by x, averages seeds and finds the gold peak', () => {
    const curves = overoptimizationCurve([
      { series: 'single', x: 4, gold: 0.5, proxy: 2 },
      { series: 'single', x: 1, gold: 0, proxy: 0 },
      { series: 'single', x: 2, gold: 1, proxy: 1 },
      { series: 'single', x: 2, gold: 3, proxy: 1 },
      { series: 'lcb', x: 1, gold: 0, proxy: 0 },
    ]);
    expect(curves.map((c) => c.name)).toEqual(['single', 'lcb']);
    const s = curves[0]!;
    expect(s.points.map((p) => p.x)).toEqual([1, 2, 4]);
    expect(s.points[1]).toMatchObject({
      gold: 2,
      goldStderr: 1,
      proxy: 1,
      proxyStderr: 0,
      gap: -1,
      count: 2,
    });
    expect(s.points[2]!.gap).toBe(1.5);
    expect(s.peakX).toBe(2);
    expect(() => overoptimizationCurve([{ series: 's', x: Number.NaN, gold: 0, proxy: 0 }])).toThrow(
      /points\[0\]\.x/,
    );
  });
});
