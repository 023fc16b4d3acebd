/** The shape of report.json (schemas/report.schema.json, schemaVersion 1). */

export const REPORT_SCHEMA_VERSION = 1;

/** One Best-of-n measurement: win rate (0–100) against the reference with its stderr over prompts. */
export interface BestOfNRow {
  readonly n: number;
  /** Aggregation rule used to pick the best answer, e.g. `mean` or `lcb`. */
  readonly rule: string;
  readonly winRate: number;
  readonly stderr: number;
  /** Sample std of the win rate over seeds, when there are several. */
  readonly seedSpread?: number;
  /**
   * AlpacaEval 2's length-controlled win rate (0–100) of the same picks: the judge's preference regressed
   * on tanh(Δlen / sd) and predicted at zero length difference (@quorum/eval `lengthControlledWinRate`).
   */
  readonly lcWinRate?: number;
  /** Its standard error (delta method, clustered by prompt). */
  readonly lcStderr?: number;
  /** Sample std of the LC win rate over seeds, when there are several. */
  readonly lcSeedSpread?: number;
  /** Pearson correlation (−1…1) of the rule's reward with the picked answers' length. */
  readonly rewardLengthPearson?: number;
  /** Spearman rank correlation (−1…1) of the rule's reward with the picked answers' length. */
  readonly rewardLengthSpearman?: number;
}

/** One point of a Best-of-n baseline curve (no reward model: a fixed selection rule on the same pools). */
export interface BaselineCurvePoint {
  readonly n: number;
  readonly winRate: number;
  readonly stderr?: number;
  readonly lcWinRate?: number;
  readonly lcStderr?: number;
}

/** A baseline drawn on every Best-of-n chart, e.g. the longest answer of n or a random pick. */
export interface BaselineCurve {
  readonly description?: string;
  readonly points: readonly BaselineCurvePoint[];
}

export interface ArchitectureReport {
  /** Pairwise accuracy on the eval split, 0–1. */
  readonly accuracy: number;
  /** Expected calibration error, 0–1. */
  readonly ece: number;
  readonly params: { readonly total: number; readonly trainable: number };
  readonly trainSeconds: number;
  readonly peakMemoryBytes?: number;
  readonly bestOfN: readonly BestOfNRow[];
}

/**
 * One PPO evaluation of an architecture's policy at a step: the gold win rate (0–100) against the SFT
 * policy, the KL to it, and (in newer reports) the proxy and gold rewards of the same eval answers — the
 * numbers of an over-optimisation curve (Gao et al. 2022). Fields are means over seeds.
 */
export interface PpoPoint {
  readonly arch: string;
  readonly rule?: string;
  readonly step: number;
  readonly goldWinRate: number;
  readonly stderr?: number;
  /** Sample std of the gold win rate over seeds, when there are several. */
  readonly seedSpread?: number;
  /**
   * KL to the SFT policy in nats per answer: the mean over answers of the sum over answer tokens of the
   * per-token estimator `klEstimator` names.
   */
  readonly kl: number;
  /** `full` (the exact full-distribution KL, ≥ 0), `k1` or `k3`; absent in older reports. */
  readonly klEstimator?: string;
  /** Mean reward of the eval answers under the proxy ensemble PPO maximised (the PPO rule's aggregate). */
  readonly proxyReward?: number;
  /** Mean reward of the same answers under each proxy member. */
  readonly proxyMembers?: readonly number[];
  /** Mean gold reward of the eval answers. */
  readonly goldReward?: number;
  /** Length-controlled gold win rate (0–100) of the policy's answers against the SFT answers. */
  readonly lcWinRate?: number;
  readonly lcStderr?: number;
  /** Sample std of the LC gold win rate over seeds, when there are several. */
  readonly lcSeedSpread?: number;
  /** Correlation (−1…1) of the policy answers' (gold) reward with their length. */
  readonly rewardLengthPearson?: number;
  readonly rewardLengthSpearman?: number;
}

export interface Baseline {
  readonly winRate: number;
  readonly stderr?: number;
  readonly lcWinRate?: number;
  readonly lcStderr?: number;
  readonly description?: string;
}

export interface ReportMeta {
  readonly createdAt?: string;
  readonly preset?: string;
  readonly seeds?: number;
  readonly backend?: string;
  readonly judge?: string;
  readonly versions?: Readonly<Record<string, string>>;
  readonly [key: string]: unknown;
}

export interface Report {
  readonly schemaVersion: typeof REPORT_SCHEMA_VERSION;
  readonly meta?: ReportMeta;
  /** Keyed by architecture name. */
  readonly architectures: Readonly<Record<string, ArchitectureReport>>;
  readonly ppo: readonly PpoPoint[];
  /** Seconds per stage. */
  readonly timings?: Readonly<Record<string, number>>;
  readonly baselines?: Readonly<Record<string, Baseline>>;
  /**
   * Baseline curves over n drawn on every Best-of-n chart, keyed by name (`longest`, `random`), computed
   * on the same pools as the architectures' curves.
   */
  readonly bestOfNBaselines?: Readonly<Record<string, BaselineCurve>>;
}
