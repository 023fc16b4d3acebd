import { pearson } from '@quorum/ensemble';
import { describe, expect, it } from 'vitest';
import { type LengthRow, lengthControlledWinRate, rewardLengthCorrelation } from './length-controlled.js';
import { winRate } from './win-rate.js';

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

describe('lengthControlledWinRate', () => {
  it('gives LC = raw, with the raw stderr, when length says nothing (hand-computed: b = 0 exactly)', () => {
    // At b = 0, μ = ȳ = 0.75 and Σ (y − μ) x = 0 by symmetry (x(−Δ) = −x(Δ)), so the fit stops at b = 0.
    const rows: LengthRow[] = [
      { outcome: 'win', lengthDelta: -100 },
      { outcome: 'loss', lengthDelta: -100 },
      { outcome: 'win', lengthDelta: 100 },
      { outcome: 'loss', lengthDelta: 100 },
      { outcome: 'win', lengthDelta: 50 },
      { outcome: 'win', lengthDelta: 50 },
      { outcome: 'win', lengthDelta: -50 },
      { outcome: 'win', lengthDelta: -50 },
    ];
    const lc = lengthControlledWinRate(rows);
    const raw = winRate(rows.map((r) => r.outcome));
    expect(lc.rawWinRate).toBeCloseTo(75, 12);
    expect(lc.winRate).toBeCloseTo(raw.winRate, 9);
    expect(lc.lengthSlope).toBeCloseTo(0, 9);
    // the sandwich with G / (G − 1) reproduces the sample-std stderr of the mean
    expect(lc.stderr).toBeCloseTo(raw.stderr, 9);
    expect(lc.degenerate).toBeUndefined();
    // sd(Δ): mean 0, Σ Δ² = 4·100² + 4·50² = 50000, / 7
    expect(lc.lengthScale).toBeCloseTo(Math.sqrt(50000 / 7), 12);
  });

  it('gives LC = 50 when wins are exactly "the longer answer wins" (symmetric lengths)', () => {
    const rows: LengthRow[] = [10, 40, 90, 200].flatMap((d) => [
      { outcome: 'win' as const, lengthDelta: d },
      { outcome: 'loss' as const, lengthDelta: -d },
    ]);
    const lc = lengthControlledWinRate(rows);
    expect(lc.rawWinRate).toBe(50);
    expect(lc.winRate).toBeCloseTo(50, 9);
    expect(lc.lengthSlope).toBeGreaterThan(5); // separated: large, finite thanks to the L2 on b
    expect(Number.isFinite(lc.stderr)).toBe(true);
  });

  it('recovers LC ≈ 50 when preferences are σ(2 · tanh(Δ / sd)), though most answers are longer (raw ≈ 70)', () => {
    const deltas = [-80, -20, 30, 60, 90, 120, 150, 200, 250, 400];
    const mean = deltas.reduce((a, b) => a + b, 0) / deltas.length;
    const sd = Math.sqrt(deltas.reduce((a, d) => a + (d - mean) ** 2, 0) / (deltas.length - 1));
    const rows = deltas.map((d) => ({ outcome: sigmoid(2 * Math.tanh(d / sd)), lengthDelta: d }));
    const lc = lengthControlledWinRate(rows, { l2: 0 });
    expect(lc.rawWinRate).toBeGreaterThan(65);
    // the soft labels are the model's own predictions at a = 0, b = 2: the MLE is exactly there
    expect(lc.intercept).toBeCloseTo(0, 8);
    expect(lc.lengthSlope).toBeCloseTo(2, 8);
    expect(lc.winRate).toBeCloseTo(50, 6);
    // the default L2 (1e-3) shrinks b a little on 10 rows
    expect(Math.abs(lengthControlledWinRate(rows).winRate - 50)).toBeLessThan(0.1);
  });

  it('weights rows and clusters the stderr by group (a Best-of-n mixture equals its expanded rows)', () => {
    const mixture: LengthRow[] = [
      { outcome: 1, lengthDelta: 30, weight: 0.75, group: 'p0' },
      { outcome: 0, lengthDelta: -10, weight: 0.25, group: 'p0' },
      { outcome: 0, lengthDelta: 5, weight: 0.5, group: 'p1' },
      { outcome: 1, lengthDelta: 60, weight: 0.5, group: 'p1' },
      { outcome: 0.5, lengthDelta: -40, weight: 1, group: 'p2' },
      { outcome: 0, lengthDelta: 0, weight: 0, group: 'p2' }, // weight 0: ignored
    ];
    const a = lengthControlledWinRate(mixture);
    expect(a.n).toBe(5);
    expect(a.groups).toBe(3);
    // an integer weight is the row repeated (same group): the same fit and the same stderr
    const integer = lengthControlledWinRate(mixture.map((r) => ({ ...r, weight: 4 * (r.weight ?? 1) })));
    const expanded = lengthControlledWinRate(
      mixture.flatMap((r) => Array.from({ length: 4 * (r.weight ?? 1) }, () => ({ ...r, weight: 1 }))),
    );
    expect(integer.winRate).toBeCloseTo(expanded.winRate, 9);
    expect(integer.stderr).toBeCloseTo(expanded.stderr, 9);
    expect(integer.groups).toBe(3);
    expect(Number.isFinite(a.stderr) && a.stderr > 0).toBe(true);
    expect(a.rawWinRate).toBeCloseTo(100 * ((0.75 + 0.5 + 0.5) / 3), 12);
  });

  it('has defined results for degenerate data', () => {
    const allWins = lengthControlledWinRate([
      { outcome: 'win', lengthDelta: 10 },
      { outcome: 'win', lengthDelta: 200 },
    ]);
    expect(allWins).toMatchObject({
      winRate: 100,
      stderr: 0,
      lengthSlope: 0,
      degenerate: 'constant-outcome',
    });
    expect(
      lengthControlledWinRate([
        { outcome: 'loss', lengthDelta: 1 },
        { outcome: 'loss', lengthDelta: -9 },
      ]),
    ).toMatchObject({ winRate: 0, stderr: 0, degenerate: 'constant-outcome' });
    const sameLength: LengthRow[] = [
      { outcome: 'win', lengthDelta: 12 },
      { outcome: 'win', lengthDelta: 12 },
      { outcome: 'tie', lengthDelta: 12 },
      { outcome: 'loss', lengthDelta: 12 },
    ];
    const flat = lengthControlledWinRate(sameLength);
    const raw = winRate(sameLength.map((r) => r.outcome));
    expect(flat.degenerate).toBe('constant-length');
    expect(flat.winRate).toBeCloseTo(raw.winRate, 12);
    expect(flat.stderr).toBeCloseTo(raw.stderr, 12);
    expect(flat.lengthSlope).toBe(0);
    expect(Number.isNaN(lengthControlledWinRate([{ outcome: 'win', lengthDelta: 3 }]).stderr)).toBe(true);
  });

  it('refuses no rows and bad values, naming the field', () => {
    expect(() => lengthControlledWinRate([])).toThrow(/no rows/);
    expect(() => lengthControlledWinRate([{ outcome: 2, lengthDelta: 0 }])).toThrow(/rows\[0\]/);
    expect(() =>
      lengthControlledWinRate([
        { outcome: 'win', lengthDelta: 0 },
        { outcome: 'win', lengthDelta: Number.NaN },
      ]),
    ).toThrow(/rows\[1\]/);
    expect(() => lengthControlledWinRate([{ outcome: 'win', lengthDelta: 0, weight: -1 }])).toThrow(/weight/);
  });
});

describe('rewardLengthCorrelation', () => {
  it('gives Pearson (ensemble’s) and Spearman with mid-ranks for ties (hand-computed)', () => {
    const rewards = [1, 2, 3, 4, 5];
    const lengths = [10, 30, 20, 50, 1000];
    const r = rewardLengthCorrelation(rewards, lengths);
    expect(r.pearson).toBe(pearson(rewards, lengths));
    // ranks of lengths: 1, 3, 2, 4, 5 → Σ d² = 2 → ρ = 1 − 6·2 / (5·24) = 0.9
    expect(r.spearman).toBeCloseTo(0.9, 12);
    // ties: lengths 10, 10, 20 → ranks 1.5, 1.5, 3 vs 1, 2, 3: Pearson of ranks = 0.866…
    expect(rewardLengthCorrelation([1, 2, 3], [10, 10, 20]).spearman).toBeCloseTo(Math.sqrt(3) / 2, 12);
    expect(Number.isNaN(rewardLengthCorrelation([1, 2], [5, 5]).pearson)).toBe(true);
  });

  it('with unit weights equals the unweighted one; weight 0 drops an item; integer weights repeat it', () => {
    const rewards = [0.3, -1, 2, 0.5];
    const lengths = [100, 40, 300, 120];
    const u = rewardLengthCorrelation(rewards, lengths);
    const w1 = rewardLengthCorrelation(rewards, lengths, [1, 1, 1, 1]);
    expect(w1.pearson).toBeCloseTo(u.pearson, 12);
    expect(w1.spearman).toBeCloseTo(u.spearman, 12);
    const dropped = rewardLengthCorrelation(rewards, lengths, [1, 0, 1, 1]);
    expect(dropped.n).toBe(3);
    expect(dropped.pearson).toBeCloseTo(pearson([0.3, 2, 0.5], [100, 300, 120]), 12);
    const twice = rewardLengthCorrelation(rewards, lengths, [2, 1, 1, 1]);
    expect(twice.pearson).toBeCloseTo(pearson([0.3, 0.3, -1, 2, 0.5], [100, 100, 40, 300, 120]), 12);
    expect(() => rewardLengthCorrelation([1], [1, 2])).toThrow(/1 rewards, 2 lengths/);
    expect(() => rewardLengthCorrelation([1, Number.NaN], [1, 2])).toThrow(/rewards\[1\]/);
  });
});
