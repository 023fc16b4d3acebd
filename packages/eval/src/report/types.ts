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

/** One PPO evaluation: gold win rate (0–100) against the SFT policy at a step, and the KL to it. */
export interface PpoPoint {
  readonly arch: string;
  readonly rule?: string;
  readonly step: number;
  readonly goldWinRate: number;
  readonly stderr?: number;
  readonly kl: number;
}

export interface Baseline {
  readonly winRate: number;
  readonly stderr?: number;
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
}
