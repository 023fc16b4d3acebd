/**
 * Reward-model metrics over plain arrays (computed after scoring, outside any tensor code):
 * accuracy of the ensemble and of each member, expected calibration error of σ(r_c − r_r), the members'
 * disagreement and the correlation between their rewards (the ensemble's real diversity), and the
 * correlation of reward with answer length (a model that only learned "longer is better" shows here).
 */

/** Rewards of one evaluation: per member, per pair. */
export interface PairScores {
  /** [k][P] rewards of the chosen answers. */
  readonly chosen: readonly (readonly number[])[];
  /** [k][P] rewards of the rejected answers. */
  readonly rejected: readonly (readonly number[])[];
  /** [P] aggregate reward of the chosen answers (e.g. the members' mean or an aggregation rule). */
  readonly chosenAggregate: readonly number[];
  readonly rejectedAggregate: readonly number[];
  /** [P] lengths (tokens) of the chosen and rejected answers, for the length correlation. */
  readonly chosenLength?: readonly number[];
  readonly rejectedLength?: readonly number[];
}

export interface RewardMetrics {
  /** Fraction of pairs where the aggregate ranks chosen above rejected (ties count half). */
  readonly accuracy: number;
  readonly memberAccuracy: number[];
  /** Expected calibration error of σ(mean_c − mean_r) over 10 equal-width bins. */
  readonly ece: number;
  /** Mean over answers of the members' population std. */
  readonly disagreement: number;
  /** Mean Pearson correlation over member pairs of their rewards on all answers (1 for k = 1). */
  readonly memberCorrelation: number;
  /** Pearson correlation of the aggregate reward with answer length over all answers. */
  readonly lengthCorrelation: number | undefined;
  /** Accuracy of "the longer answer wins" on the same pairs: the baseline to beat. */
  readonly longerWinsAccuracy: number | undefined;
  readonly pairs: number;
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function pairAccuracy(c: readonly number[], r: readonly number[]): number {
  if (c.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < c.length; i++) {
    const d = (c[i] as number) - (r[i] as number);
    s += d > 0 ? 1 : d === 0 ? 0.5 : 0;
  }
  return s / c.length;
}

/** Pearson correlation; NaN when either side is constant or empty. */
export function pearson(x: readonly number[], y: readonly number[]): number {
  const n = Math.min(x.length, y.length);
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] as number;
    my += y[i] as number;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (x[i] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/**
 * Expected calibration error: predictions p_i = P(chosen ≻ rejected) in 10 equal-width bins; the weighted
 * mean over bins of |accuracy − confidence|. Each pair enters once with p and label 1 (chosen won).
 * Pairs are symmetrised (p and 1 − p with labels 1 and 0) so the measure does not depend on which side is
 * called "chosen".
 */
export function expectedCalibrationError(probabilities: readonly number[], bins = 10): number {
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const hits = new Array<number>(bins).fill(0);
  const add = (p: number, label: number): void => {
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b] = (count[b] as number) + 1;
    conf[b] = (conf[b] as number) + p;
    hits[b] = (hits[b] as number) + label;
  };
  for (const p of probabilities) {
    add(p, 1);
    add(1 - p, 0);
  }
  const total = probabilities.length * 2;
  if (total === 0) return Number.NaN;
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    const n = count[b] as number;
    if (n === 0) continue;
    ece += (n / total) * Math.abs((hits[b] as number) / n - (conf[b] as number) / n);
  }
  return ece;
}

export function rewardMetrics(scores: PairScores): RewardMetrics {
  const k = scores.chosen.length;
  const pairs = scores.chosenAggregate.length;
  const memberAccuracy = scores.chosen.map((c, m) => pairAccuracy(c, scores.rejected[m] as number[]));
  // Calibration of the ensemble's mean reward difference (the BT probability the members agree on).
  const probs: number[] = [];
  for (let i = 0; i < pairs; i++) {
    let mc = 0;
    let mr = 0;
    for (let m = 0; m < k; m++) {
      mc += scores.chosen[m]?.[i] as number;
      mr += scores.rejected[m]?.[i] as number;
    }
    probs.push(sigmoid((mc - mr) / k));
  }
  // Disagreement and member correlation over all answers (chosen and rejected).
  const all = scores.chosen.map((c, m) => [...c, ...(scores.rejected[m] as number[])]);
  let disagreement = 0;
  const answers = all[0]?.length ?? 0;
  for (let j = 0; j < answers; j++) {
    let mean = 0;
    for (let m = 0; m < k; m++) mean += all[m]?.[j] as number;
    mean /= k;
    let v = 0;
    for (let m = 0; m < k; m++) v += ((all[m]?.[j] as number) - mean) ** 2;
    disagreement += Math.sqrt(v / k);
  }
  disagreement = answers === 0 ? Number.NaN : disagreement / answers;
  let corr = 0;
  let nCorr = 0;
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      const r = pearson(all[a] as number[], all[b] as number[]);
      if (!Number.isNaN(r)) {
        corr += r;
        nCorr++;
      }
    }
  }
  const memberCorrelation = k === 1 ? 1 : nCorr === 0 ? Number.NaN : corr / nCorr;
  let lengthCorrelation: number | undefined;
  let longerWinsAccuracy: number | undefined;
  if (scores.chosenLength !== undefined && scores.rejectedLength !== undefined) {
    lengthCorrelation = pearson(
      [...scores.chosenAggregate, ...scores.rejectedAggregate],
      [...scores.chosenLength, ...scores.rejectedLength],
    );
    longerWinsAccuracy = pairAccuracy(scores.chosenLength, scores.rejectedLength);
  }
  return {
    accuracy: pairAccuracy(scores.chosenAggregate, scores.rejectedAggregate),
    memberAccuracy,
    ece: expectedCalibrationError(probs),
    disagreement,
    memberCorrelation,
    lengthCorrelation,
    longerWinsAccuracy,
    pairs,
  };
}
