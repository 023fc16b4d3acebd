/**
 * The report's tables as data: one model, rendered by report.md (Markdown) and report.html (HTML), so the
 * two files always show the same rows and cells.
 */
import type { BestOfNRow, PpoPoint, Report } from './types.js';

/** One table: a heading, column names and rows of formatted cells. */
export interface ReportTable {
  readonly title: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const f1 = (x: number): string => x.toFixed(1);

/** Distinct values in first-seen order. */
export function distinct<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

/** The win-rate cell: `w ± se` (and `(seeds ±spread)` when known). */
export function winCell(winRate: number, stderr: number | undefined, spread?: number): string {
  let s = stderr === undefined ? f1(winRate) : `${f1(winRate)} ± ${f1(stderr)}`;
  if (spread !== undefined) s += ` (seeds ±${f1(spread)})`;
  return s;
}

/** The KL estimator every point names (`full`, `k1`, …), or undefined when they differ or one names none. */
export function klEstimatorOf(points: readonly PpoPoint[]): string | undefined {
  const names = distinct(points.map((p) => p.klEstimator));
  return names.length === 1 ? names[0] : undefined;
}

/**
 * The PPO table: one row per evaluation (means over seeds). The LC, proxy reward (with its members), gold
 * reward and reward–length columns appear when some point has them, so an older report keeps its table.
 * The KL heading names the estimator the points share ("KL to SFT (nats/answer, full)"); with none or a
 * mix, a column names each row's.
 */
function ppoTable(ppo: readonly PpoPoint[]): ReportTable {
  const has = (f: (p: PpoPoint) => unknown): boolean => ppo.some((p) => f(p) !== undefined);
  const num = (v: number | undefined, digits = 3): string => (v === undefined ? '–' : v.toFixed(digits));
  const estimator = klEstimatorOf(ppo);
  const perRowEstimator = estimator === undefined && has((p) => p.klEstimator);
  const columns: [string, (p: PpoPoint) => string][] = [
    ['architecture', (p) => p.arch],
    ['rule', (p) => p.rule ?? ''],
    ['step', (p) => String(p.step)],
    ['gold win rate %', (p) => winCell(p.goldWinRate, p.stderr, p.seedSpread)],
  ];
  if (has((p) => p.lcWinRate))
    columns.push([
      'LC gold win rate %',
      (p) => (p.lcWinRate === undefined ? '–' : winCell(p.lcWinRate, p.lcStderr, p.lcSeedSpread)),
    ]);
  if (has((p) => p.proxyReward)) columns.push(['proxy reward', (p) => num(p.proxyReward)]);
  if (has((p) => p.proxyMembers))
    columns.push([
      'proxy members',
      (p) => (p.proxyMembers === undefined ? '–' : p.proxyMembers.map((m) => m.toFixed(2)).join(' / ')),
    ]);
  if (has((p) => p.goldReward)) columns.push(['gold reward', (p) => num(p.goldReward)]);
  columns.push([
    estimator === undefined ? 'KL to SFT (nats/answer)' : `KL to SFT (nats/answer, ${estimator})`,
    (p) => num(p.kl),
  ]);
  if (perRowEstimator) columns.push(['KL estimator', (p) => p.klEstimator ?? '–']);
  if (has((p) => p.rewardLengthPearson ?? p.rewardLengthSpearman))
    columns.push([
      'gold reward–length r (Pearson / Spearman)',
      (p) =>
        p.rewardLengthPearson === undefined && p.rewardLengthSpearman === undefined
          ? '–'
          : `${num(p.rewardLengthPearson, 2)} / ${num(p.rewardLengthSpearman, 2)}`,
    ]);
  return {
    title: 'PPO: gold win rate vs the SFT policy',
    header: columns.map(([h]) => h),
    rows: ppo.map((p) => columns.map(([, cell]) => cell(p))),
  };
}

/** The report's tables in order; a section without data has no table. */
export function reportTables(report: Report): ReportTable[] {
  const tables: ReportTable[] = [];
  const archs = Object.entries(report.architectures);
  tables.push({
    title: 'Reward models',
    header: ['architecture', 'accuracy %', 'ECE', 'params (total)', 'params (trainable)', 'train s'],
    rows: archs.map(([name, a]) => [
      name,
      f1(100 * a.accuracy),
      a.ece.toFixed(3),
      a.params.total.toLocaleString('en-US'),
      a.params.trainable.toLocaleString('en-US'),
      f1(a.trainSeconds),
    ]),
  });
  const rules = distinct(archs.flatMap(([, a]) => a.bestOfN.map((r) => r.rule)));
  const ns = distinct(archs.flatMap(([, a]) => a.bestOfN.map((r) => r.n))).sort((x, y) => x - y);
  if (ns.length > 0) {
    const columns = archs
      .flatMap(([name]) => rules.map((rule) => [name, rule] as const))
      .filter(([name, rule]) => report.architectures[name]!.bestOfN.some((r) => r.rule === rule));
    const rowOf = (name: string, rule: string, n: number): BestOfNRow | undefined =>
      report.architectures[name]!.bestOfN.find((r) => r.n === n && r.rule === rule);
    const hasLc = (name: string, rule: string): boolean =>
      report.architectures[name]!.bestOfN.some((r) => r.rule === rule && r.lcWinRate !== undefined);
    const baselines = Object.entries(report.bestOfNBaselines ?? {});
    const header: string[] = ['n'];
    for (const [name, rule] of columns) {
      header.push(`${name} / ${rule}`);
      if (hasLc(name, rule)) header.push(`${name} / ${rule} LC`);
    }
    for (const [name, curve] of baselines) {
      header.push(name);
      if (curve.points.some((p) => p.lcWinRate !== undefined)) header.push(`${name} LC`);
    }
    tables.push({
      title: 'Best-of-n win rate vs the reference (%, ± stderr over prompts; LC: length-controlled)',
      header,
      rows: ns.map((n) => {
        const cells = [String(n)];
        for (const [name, rule] of columns) {
          const row = rowOf(name, rule, n);
          cells.push(row === undefined ? '–' : winCell(row.winRate, row.stderr, row.seedSpread));
          if (hasLc(name, rule))
            cells.push(
              row?.lcWinRate === undefined ? '–' : winCell(row.lcWinRate, row.lcStderr, row.lcSeedSpread),
            );
        }
        for (const [, curve] of baselines) {
          const p = curve.points.find((q) => q.n === n);
          cells.push(p === undefined ? '–' : winCell(p.winRate, p.stderr));
          if (curve.points.some((q) => q.lcWinRate !== undefined))
            cells.push(p?.lcWinRate === undefined ? '–' : winCell(p.lcWinRate, p.lcStderr));
        }
        return cells;
      }),
    });
    const withCorrelation = columns.filter(([name, rule]) =>
      report.architectures[name]!.bestOfN.some(
        (r) =>
          r.rule === rule && (r.rewardLengthPearson !== undefined || r.rewardLengthSpearman !== undefined),
      ),
    );
    if (withCorrelation.length > 0) {
      const c2 = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(2));
      tables.push({
        title: 'Best-of-n reward–length correlation of the picked answers (Pearson / Spearman)',
        header: ['n', ...withCorrelation.map(([name, rule]) => `${name} / ${rule}`)],
        rows: ns.map((n) => [
          String(n),
          ...withCorrelation.map(([name, rule]) => {
            const row = rowOf(name, rule, n);
            return row === undefined
              ? '–'
              : `${c2(row.rewardLengthPearson)} / ${c2(row.rewardLengthSpearman)}`;
          }),
        ]),
      });
    }
  }
  if (report.ppo.length > 0) tables.push(ppoTable(report.ppo));
  if (report.baselines !== undefined && Object.keys(report.baselines).length > 0) {
    const lc = Object.values(report.baselines).some((b) => b.lcWinRate !== undefined);
    tables.push({
      title: 'Baselines',
      header: ['baseline', 'win rate %', ...(lc ? ['LC win rate %'] : []), 'what'],
      rows: Object.entries(report.baselines).map(([k, b]) => [
        k,
        winCell(b.winRate, b.stderr),
        ...(lc ? [b.lcWinRate === undefined ? '–' : winCell(b.lcWinRate, b.lcStderr)] : []),
        b.description ?? '',
      ]),
    });
  }
  if (report.timings !== undefined && Object.keys(report.timings).length > 0) {
    tables.push({
      title: 'Timings',
      header: ['stage', 'seconds'],
      rows: Object.entries(report.timings).map(([k, s]) => [k, f1(s)]),
    });
  }
  return tables;
}
