/**
 * The report's tables as data: one model, rendered by report.md (Markdown) and report.html (HTML), so the
 * two files always show the same rows and cells.
 */
import type { BestOfNRow, Report } from './types.js';

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
  if (report.ppo.length > 0) {
    const lc = report.ppo.some((p) => p.lcWinRate !== undefined);
    tables.push({
      title: 'PPO: gold win rate vs the SFT policy',
      header: [
        'architecture',
        'rule',
        'step',
        'gold win rate %',
        ...(lc ? ['LC gold win rate %'] : []),
        'KL',
      ],
      rows: report.ppo.map((p) => [
        p.arch,
        p.rule ?? '',
        String(p.step),
        winCell(p.goldWinRate, p.stderr),
        ...(lc ? [p.lcWinRate === undefined ? '–' : winCell(p.lcWinRate, p.lcStderr)] : []),
        p.kl.toFixed(3),
      ]),
    });
  }
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
