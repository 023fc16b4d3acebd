/**
 * Length-controlled win rate (AlpacaEval 2; Dubois et al. 2024, "Length-Controlled AlpacaEval") and the
 * correlation of reward with answer length. Plain functions over arrays.
 *
 * The LC win rate answers "what would the preference be if the answer and the reference had the same
 * length?". A logistic regression (a GLM with soft labels) predicts the judge's preference p_i ∈ [0, 1]
 * for the answer under test from the length difference:
 *
 *   logit P(win_i) = a + b · tanh(Δ_i / sd(Δ)),   Δ_i = len(answer_i) − len(reference_i)  (characters)
 *
 * fitted by Newton's method (IRLS) on the weighted log-likelihood with a small L2 penalty on b only (so a
 * data set that length separates perfectly still has a finite fit). The LC win rate is the prediction at
 * Δ = 0: 100 · σ(a). AlpacaEval's per-instruction difficulty term is not modelled (it needs the fits of
 * many models); this is AlpacaEval's model intercept + length term.
 *
 * Standard error: the delta method, 100 · σ(a)(1 − σ(a)) · √V_aa, with V the cluster-robust (sandwich)
 * covariance of (a, b) over instructions (rows of one `group` are one unit) and the G / (G − 1)
 * small-sample factor. Without a length effect it equals the raw win rate's standard error.
 *
 * Degenerate data, each with a defined result (`degenerate` says which):
 *   - every preference the same value c (all wins, all losses, all ties): LC = raw = 100 c, stderr as the
 *     raw one (0), b = 0 — no length term can explain a constant outcome;
 *   - every length difference the same (zero variance, e.g. all answers as long as their references): the
 *     length term cannot be told from the intercept, so LC = raw with the raw standard error, b = 0.
 */
import { ConfigError } from '@quorum/core';
import { pearson } from '@quorum/ensemble';
import type { Outcome } from './win-rate.js';

/** One judged answer: its outcome against the reference and how much longer it is. */
export interface LengthRow {
  /** The judge's verdict or preference in [0, 1] for the answer under test (1 = it wins). */
  readonly outcome: Outcome;
  /** len(answer) − len(reference), in characters (AlpacaEval's unit). */
  readonly lengthDelta: number;
  /**
   * Weight of the row (default 1): e.g. the probability that Best-of-n keeps this candidate, so the
   * candidates of one prompt sum to 1.
   */
  readonly weight?: number;
  /** The instruction the row answers; rows of one group are one unit for the standard error (default: each row its own). */
  readonly group?: string | number;
}

export interface LengthControlledOptions {
  /** L2 penalty on the length coefficient b (not on the intercept). Default 1e-3: keeps a perfectly length-separated data set finite, negligible otherwise. */
  readonly l2?: number;
  /** Newton iterations at most (default 100). */
  readonly maxIterations?: number;
}

export interface LengthControlledWinRate {
  /** The LC win rate: 100 · σ(a), the predicted win rate at zero length difference. */
  readonly winRate: number;
  /** Its standard error (× 100), delta method over a cluster-robust covariance; NaN for one group. */
  readonly stderr: number;
  /** The weighted mean preference × 100 (the raw win rate of the same rows). */
  readonly rawWinRate: number;
  /** Intercept a (logit scale). */
  readonly intercept: number;
  /** Length coefficient b of tanh(Δ / sd(Δ)) (logit scale); > 0: the judge prefers longer answers. */
  readonly lengthSlope: number;
  /** sd(Δ) used to scale the length difference (weighted, n − 1 style). */
  readonly lengthScale: number;
  /** Rows with positive weight. */
  readonly n: number;
  /** Distinct groups (instructions). */
  readonly groups: number;
  readonly iterations: number;
  /** Set when the data cannot support the fit; see this file's header. */
  readonly degenerate?: 'constant-outcome' | 'constant-length';
}

function preferenceOf(o: Outcome, i: number): number {
  if (o === 'win') return 1;
  if (o === 'loss') return 0;
  if (o === 'tie') return 0.5;
  if (typeof o === 'number' && o >= 0 && o <= 1) return o;
  throw new ConfigError(`row ${i} has outcome ${JSON.stringify(o)}`, {
    location: { field: `rows[${i}].outcome` },
    hint: 'use "win", "tie", "loss" or a preference in [0, 1]',
  });
}

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

interface Prepared {
  y: number[];
  d: number[];
  w: number[];
  g: number[];
  groups: number;
}

function prepare(rows: readonly LengthRow[]): Prepared {
  const y: number[] = [];
  const d: number[] = [];
  const w: number[] = [];
  const g: number[] = [];
  const ids = new Map<string | number, number>();
  rows.forEach((r, i) => {
    const weight = r.weight ?? 1;
    if (!Number.isFinite(weight) || weight < 0) {
      throw new ConfigError(`row ${i} has weight ${weight}`, {
        location: { field: `rows[${i}].weight` },
        hint: 'weights are finite and ≥ 0',
      });
    }
    if (!Number.isFinite(r.lengthDelta)) {
      throw new ConfigError(`row ${i} has lengthDelta ${r.lengthDelta}`, {
        location: { field: `rows[${i}].lengthDelta` },
        hint: 'pass len(answer) − len(reference) in characters',
      });
    }
    const p = preferenceOf(r.outcome, i);
    if (weight === 0) return;
    const key = r.group ?? `#row${i}`;
    let id = ids.get(key);
    if (id === undefined) ids.set(key, (id = ids.size));
    y.push(p);
    d.push(r.lengthDelta);
    w.push(weight);
    g.push(id);
  });
  if (y.length === 0) {
    throw new ConfigError('no rows with positive weight for the length-controlled win rate', {
      location: { field: 'rows' },
      hint: 'pass at least one judged answer with its length difference',
    });
  }
  return { y, d, w, g, groups: ids.size };
}

/** Cluster-robust covariance (a, b) → V_aa, from the bread H (2 × 2, negative Hessian) and per-group scores. */
function sandwichVarA(
  p: Prepared,
  x: readonly number[],
  mu: readonly number[],
  h: readonly [number, number, number],
): number {
  const G = p.groups;
  if (G < 2) return Number.NaN;
  const ua = new Float64Array(G);
  const ub = new Float64Array(G);
  for (let i = 0; i < p.y.length; i++) {
    const r = (p.w[i] as number) * ((p.y[i] as number) - (mu[i] as number));
    ua[p.g[i] as number] += r;
    ub[p.g[i] as number] += r * (x[i] as number);
  }
  let maa = 0;
  let mab = 0;
  let mbb = 0;
  for (let k = 0; k < G; k++) {
    maa += (ua[k] as number) ** 2;
    mab += (ua[k] as number) * (ub[k] as number);
    mbb += (ub[k] as number) ** 2;
  }
  const c = G / (G - 1);
  const [haa, hab, hbb] = h;
  const det = haa * hbb - hab * hab;
  // H⁻¹ = [[hbb, −hab], [−hab, haa]] / det; V_aa = (H⁻¹ M H⁻¹)_aa
  const ia = hbb / det;
  const ib = -hab / det;
  return c * (ia * ia * maa + 2 * ia * ib * mab + ib * ib * mbb);
}

/**
 * AlpacaEval 2's length-controlled win rate over judged answers (see this file's header for the model,
 * the standard error and the degenerate cases). Throws a ConfigError naming the row on a bad outcome,
 * weight or length, and on no rows.
 */
export function lengthControlledWinRate(
  rows: readonly LengthRow[],
  options: LengthControlledOptions = {},
): LengthControlledWinRate {
  const l2 = options.l2 ?? 1e-3;
  const maxIterations = options.maxIterations ?? 100;
  if (!(l2 >= 0) || !Number.isFinite(l2)) {
    throw new ConfigError(`l2 must be a finite number ≥ 0, got ${l2}`, {
      location: { field: 'l2' },
      hint: 'e.g. 1e-3',
    });
  }
  const p = prepare(rows);
  const n = p.y.length;
  let W = 0;
  let sy = 0;
  let sd = 0;
  for (let i = 0; i < n; i++) {
    W += p.w[i] as number;
    sy += (p.w[i] as number) * (p.y[i] as number);
    sd += (p.w[i] as number) * (p.d[i] as number);
  }
  const ybar = sy / W;
  const dbar = sd / W;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (p.w[i] as number) * ((p.d[i] as number) - dbar) ** 2;
  const scale = Math.sqrt(W > 1 ? ss / (W - 1) : ss / W);
  const base = { rawWinRate: 100 * ybar, lengthScale: scale, n, groups: p.groups };
  const intercept = (mu: number): { stderr: number } => {
    // Intercept-only fit: a = logit(ȳ), V_aa = c · Σ_G u_G² / H_aa², so SE(σ(a)) = √(c Σ_G u_G²) / W.
    const zero = new Array<number>(n).fill(0);
    const m = new Array<number>(n).fill(mu);
    const v = mu <= 0 || mu >= 1 ? 0 : sandwichVarA(p, zero, m, [W * mu * (1 - mu), 0, 1]);
    return { stderr: 100 * mu * (1 - mu) * Math.sqrt(v) };
  };
  if (p.y.every((v) => v === p.y[0])) {
    const se = p.groups < 2 ? Number.NaN : intercept(ybar).stderr;
    return {
      winRate: 100 * ybar,
      stderr: se,
      ...base,
      intercept: Math.log(ybar / (1 - ybar)),
      lengthSlope: 0,
      iterations: 0,
      degenerate: 'constant-outcome',
    };
  }
  if (!(scale > 0) || p.d.every((v) => v === p.d[0])) {
    return {
      winRate: 100 * ybar,
      stderr: intercept(ybar).stderr,
      ...base,
      intercept: Math.log(ybar / (1 - ybar)),
      lengthSlope: 0,
      iterations: 0,
      degenerate: 'constant-length',
    };
  }
  const x = p.d.map((v) => Math.tanh(v / scale));
  const mu = new Array<number>(n).fill(0);
  const objective = (a: number, b: number): number => {
    let ll = 0;
    for (let i = 0; i < n; i++) {
      const z = a + b * (x[i] as number);
      // log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z)
      const sp = (t: number): number => (t > 0 ? t + Math.log1p(Math.exp(-t)) : Math.log1p(Math.exp(t)));
      const yi = p.y[i] as number;
      ll -= (p.w[i] as number) * (yi * sp(-z) + (1 - yi) * sp(z));
    }
    return ll - 0.5 * l2 * b * b;
  };
  let a = Math.log(ybar / (1 - ybar));
  let b = 0;
  let f = objective(a, b);
  let h: [number, number, number] = [0, 0, 0];
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    let ga = 0;
    let gb = -l2 * b;
    let haa = 0;
    let hab = 0;
    let hbb = l2;
    for (let i = 0; i < n; i++) {
      const m = sigmoid(a + b * (x[i] as number));
      mu[i] = m;
      const wi = p.w[i] as number;
      const xi = x[i] as number;
      const r = wi * ((p.y[i] as number) - m);
      ga += r;
      gb += r * xi;
      const v = wi * m * (1 - m);
      haa += v;
      hab += v * xi;
      hbb += v * xi * xi;
    }
    h = [haa, hab, hbb];
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    if (Math.abs(da) + Math.abs(db) < 1e-12) break;
    // Damped Newton: halve the step until the penalised log-likelihood does not drop.
    let t = 1;
    let fa = objective(a + da, b + db);
    while (fa < f - 1e-12 * Math.abs(f) && t > 1e-8) {
      t /= 2;
      fa = objective(a + t * da, b + t * db);
    }
    a += t * da;
    b += t * db;
    const improved = fa - f;
    f = fa;
    if (Math.abs(t * da) + Math.abs(t * db) < 1e-10 || Math.abs(improved) < 1e-14 * Math.max(1, Math.abs(f)))
      break;
  }
  for (let i = 0; i < n; i++) mu[i] = sigmoid(a + b * (x[i] as number));
  const lc = sigmoid(a);
  const v = sandwichVarA(p, x, mu, h);
  return {
    winRate: 100 * lc,
    stderr: 100 * lc * (1 - lc) * Math.sqrt(v),
    ...base,
    intercept: a,
    lengthSlope: b,
    iterations: iterations + 1,
  };
}

export interface RewardLengthCorrelation {
  /** Pearson correlation of reward and length; NaN when either is constant. */
  readonly pearson: number;
  /** Spearman rank correlation (ties get their mean rank); NaN when either is constant. */
  readonly spearman: number;
  /** Items with positive weight. */
  readonly n: number;
}

function weightedPearson(x: readonly number[], y: readonly number[], w: readonly number[]): number {
  let W = 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < x.length; i++) {
    W += w[i] as number;
    mx += (w[i] as number) * (x[i] as number);
    my += (w[i] as number) * (y[i] as number);
  }
  if (!(W > 0)) return Number.NaN;
  mx /= W;
  my /= W;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = (x[i] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += (w[i] as number) * dx * dy;
    sxx += (w[i] as number) * dx * dx;
    syy += (w[i] as number) * dy * dy;
  }
  return sxx <= 0 || syy <= 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/** Mid-ranks (1-based) by weight: a tie group spanning cumulative weight (c, c + w] gets c + (w + 1) / 2 with unit weights. */
function ranks(v: readonly number[], w: readonly number[]): number[] {
  const order = v.map((_, i) => i).sort((i, j) => (v[i] as number) - (v[j] as number));
  const out = new Array<number>(v.length).fill(0);
  let before = 0;
  for (let lo = 0; lo < order.length; ) {
    let hi = lo;
    let groupW = 0;
    while (hi < order.length && v[order[hi] as number] === v[order[lo] as number])
      groupW += w[order[hi++] as number] as number;
    // The mean rank of the group's weight mass: unit weights give (first + last) / 2.
    const r = before + (groupW + 1) / 2;
    for (let j = lo; j < hi; j++) out[order[j] as number] = r;
    before += groupW;
    lo = hi;
  }
  return out;
}

/**
 * Pearson and Spearman correlation of rewards with lengths. With `weights` (e.g. the probability that
 * Best-of-n keeps each candidate), both are weighted; without, Pearson is @quorum/ensemble's `pearson`
 * (the same as `rewardMetrics`' lengthCorrelation). Throws on mismatched lengths or non-finite values.
 */
export function rewardLengthCorrelation(
  rewards: readonly number[],
  lengths: readonly number[],
  weights?: readonly number[],
): RewardLengthCorrelation {
  if (rewards.length !== lengths.length || (weights !== undefined && weights.length !== rewards.length)) {
    throw new ConfigError(
      `${rewards.length} rewards, ${lengths.length} lengths${weights === undefined ? '' : `, ${weights.length} weights`}`,
      { location: { field: 'lengths' }, hint: 'give one length (and weight) per reward' },
    );
  }
  for (const [name, xs] of [
    ['rewards', rewards],
    ['lengths', lengths],
    ['weights', weights ?? []],
  ] as const) {
    const i = xs.findIndex((v) => !Number.isFinite(v) || (name === 'weights' && v < 0));
    if (i >= 0) {
      throw new ConfigError(`${name}[${i}] is ${xs[i]}`, {
        location: { field: `${name}[${i}]` },
        hint: name === 'weights' ? 'weights are finite and ≥ 0' : 'pass finite numbers',
      });
    }
  }
  if (weights === undefined) {
    const unit = rewards.map(() => 1);
    return {
      pearson: pearson(rewards, lengths),
      spearman: pearson(ranks(rewards, unit), ranks(lengths, unit)),
      n: rewards.length,
    };
  }
  const keep = weights.map((w, i) => (w > 0 ? i : -1)).filter((i) => i >= 0);
  const r = keep.map((i) => rewards[i] as number);
  const l = keep.map((i) => lengths[i] as number);
  const w = keep.map((i) => weights[i] as number);
  return {
    pearson: weightedPearson(r, l, w),
    spearman: weightedPearson(ranks(r, w), ranks(l, w), w),
    n: keep.length,
  };
}
