/**
 * report.html: one self-contained page (inline CSS and SVG, no script, no network) with the charts —
 * Best-of-n win rate vs n per architecture, one chart per rule, with ± stderr bands and the longest-answer
 * and random baselines as dashed lines, and the same for the length-controlled win rate when the report
 * has it; PPO per architecture and rule: gold win rate vs step, the over-optimisation curves gold win rate
 * vs KL to SFT and proxy reward vs KL (Gao et al. 2022), and the LC gold win rate vs step — and the tables
 * of report.md (the same `reportTables`).
 */
import { type ChartSeries, escapeXml, lineChart } from './svg.js';
import { distinct, klEstimatorOf, type ReportTable, reportTables } from './tables.js';
import type { PpoPoint, Report } from './types.js';

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}
.charts{display:flex;flex-wrap:wrap;gap:1rem}svg{background:#fff;border:1px solid #eee}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}svg .tick,svg .legend{font-size:11px;fill:#444}
svg .axis-label{font-size:12px;fill:#222}svg .axis-note{font-size:10px;fill:#555}svg .chart-title{font-size:13px;font-weight:600}
svg .reference{stroke:#888;stroke-dasharray:4 4}svg .empty{fill:#999}.meta{color:#555}`;

function htmlTable({ header, rows }: ReportTable): string {
  const th = header.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The baseline curves of the report as chart series (raw or LC win rate), drawn on every Best-of-n chart. */
function baselineSeries(report: Report, lc: boolean): ChartSeries[] {
  return Object.entries(report.bestOfNBaselines ?? {}).flatMap(([name, curve]) => {
    const points = curve.points.flatMap((p) => {
      const y = lc ? p.lcWinRate : p.winRate;
      const err = lc ? p.lcStderr : p.stderr;
      return y === undefined ? [] : [{ x: p.n, y, ...(err === undefined ? {} : { err }) }];
    });
    return points.length === 0 ? [] : [{ name: BASELINE_LABELS[name] ?? name, points, baseline: true }];
  });
}

const BASELINE_LABELS: Readonly<Record<string, string>> = {
  longest: 'longest answer',
  random: 'random answer',
};

/**
 * The Best-of-n charts — per rule, raw win rate vs n and (when the rows carry it) the length-controlled
 * win rate vs n, each with the baseline curves — then the PPO charts (`ppoCharts`).
 */
export function reportCharts(report: Report): string[] {
  const archs = Object.entries(report.architectures);
  const rules = distinct(archs.flatMap(([, a]) => a.bestOfN.map((r) => r.rule)));
  const charts: string[] = [];
  for (const rule of rules) {
    const rows = (a: (typeof archs)[number][1]) => a.bestOfN.filter((r) => r.rule === rule);
    const series: ChartSeries[] = archs.map(([name, a]) => ({
      name,
      points: rows(a).map((r) => ({ x: r.n, y: r.winRate, err: r.stderr })),
    }));
    charts.push(
      lineChart({
        id: `best-of-n/${rule}`,
        title: `Best-of-n win rate vs n (rule: ${rule})`,
        xLabel: 'n (candidates per prompt, log scale)',
        yLabel: 'win rate vs reference (%)',
        series: [...series, ...baselineSeries(report, false)],
        log2X: true,
        yReference: 50,
      }),
    );
    const lcSeries: ChartSeries[] = archs.map(([name, a]) => ({
      name,
      points: rows(a).flatMap((r) =>
        r.lcWinRate === undefined
          ? []
          : [{ x: r.n, y: r.lcWinRate, ...(r.lcStderr === undefined ? {} : { err: r.lcStderr }) }],
      ),
    }));
    if (lcSeries.some((s) => s.points.length > 0)) {
      charts.push(
        lineChart({
          id: `best-of-n-lc/${rule}`,
          title: `Best-of-n length-controlled win rate vs n (rule: ${rule})`,
          xLabel: 'n (candidates per prompt, log scale)',
          yLabel: 'LC win rate vs reference (%)',
          series: [...lcSeries, ...baselineSeries(report, true)],
          log2X: true,
          yReference: 50,
        }),
      );
    }
  }
  charts.push(...ppoCharts(report.ppo));
  return charts;
}

/** The x axis of the PPO charts over KL: what the KL is, from the estimator the points record. */
function klAxis(points: readonly PpoPoint[]): { xLabel: string; xNote: string } {
  const estimator = klEstimatorOf(points);
  const sum = 'mean over answers of the sum over answer tokens';
  if (estimator === 'full')
    return {
      xLabel: 'KL to SFT (nats/answer): exact full-distribution KL',
      xNote: `${sum} of Σ_v π(v)·log(π(v)/π_SFT(v))`,
    };
  if (estimator !== undefined)
    return { xLabel: `KL to SFT (nats/answer): ${estimator} estimate`, xNote: sum };
  const recorded = distinct(points.flatMap((p) => (p.klEstimator === undefined ? [] : [p.klEstimator])));
  return {
    xLabel: 'KL to SFT (nats/answer)',
    xNote: `${sum}; ${recorded.length === 0 ? 'estimator not recorded' : `estimators ${recorded.join(', ')}`}`,
  };
}

/**
 * The PPO charts, one series per architecture (and rule): gold win rate vs step, then the over-optimisation
 * curves of Gao et al. (2022) — gold win rate vs KL to SFT and, when the points carry it, the proxy
 * ensemble's reward vs KL — then the LC gold win rate vs step when the points carry it. None without points.
 */
function ppoCharts(ppo: readonly PpoPoint[]): string[] {
  if (ppo.length === 0) return [];
  const label = (p: PpoPoint): string => (p.rule === undefined ? p.arch : `${p.arch} / ${p.rule}`);
  const names = distinct(ppo.map(label));
  const series = (
    x: (p: PpoPoint) => number,
    y: (p: PpoPoint) => number | undefined,
    err: (p: PpoPoint) => number | undefined = () => undefined,
  ): ChartSeries[] =>
    names.map((name) => ({
      name,
      points: ppo
        .filter((p) => label(p) === name)
        .flatMap((p) => {
          const v = y(p);
          const e = err(p);
          return v === undefined ? [] : [{ x: x(p), y: v, ...(e === undefined ? {} : { err: e }) }];
        }),
    }));
  const step = (p: PpoPoint): number => p.step;
  const kl = (p: PpoPoint): number => p.kl;
  const some = (s: readonly ChartSeries[]): boolean => s.some((x) => x.points.length > 0);
  const charts: string[] = [
    lineChart({
      id: 'ppo',
      title: 'PPO: gold win rate vs step',
      xLabel: 'PPO step',
      yLabel: 'gold win rate vs SFT (%)',
      series: series(
        step,
        (p) => p.goldWinRate,
        (p) => p.stderr,
      ),
      yReference: 50,
    }),
    lineChart({
      id: 'ppo-gold-kl',
      title: 'PPO: gold win rate vs KL to SFT',
      ...klAxis(ppo),
      yLabel: 'gold win rate vs SFT (%)',
      series: series(
        kl,
        (p) => p.goldWinRate,
        (p) => p.stderr,
      ),
      yReference: 50,
    }),
  ];
  const proxy = series(kl, (p) => p.proxyReward);
  if (some(proxy)) {
    charts.push(
      lineChart({
        id: 'ppo-proxy-kl',
        title: 'PPO: proxy reward vs KL to SFT',
        ...klAxis(ppo),
        yLabel: 'proxy reward of the eval answers (rule)',
        series: proxy,
      }),
    );
  }
  const lc = series(
    step,
    (p) => p.lcWinRate,
    (p) => p.lcStderr,
  );
  if (some(lc)) {
    charts.push(
      lineChart({
        id: 'ppo-lc',
        title: 'PPO: length-controlled gold win rate vs step',
        xLabel: 'PPO step',
        yLabel: 'LC gold win rate vs SFT (%)',
        series: lc,
        yReference: 50,
      }),
    );
  }
  return charts;
}

export function renderHtml(report: Report): string {
  const meta = Object.entries(report.meta ?? {}).filter(
    ([, v]) => typeof v === 'string' || typeof v === 'number',
  );
  const out: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>Quorum report</title>',
    `<style>${CSS}</style>`,
    '</head><body>',
    '<h1>Quorum report</h1>',
  ];
  if (meta.length > 0) {
    out.push(
      `<p class="meta">${meta.map(([k, v]) => `${escapeXml(k)}: ${escapeXml(String(v))}`).join(' · ')}</p>`,
    );
  }
  out.push('<h2>Charts</h2>', `<div class="charts">${reportCharts(report).join('\n')}</div>`);
  for (const t of reportTables(report)) out.push(`<h2>${escapeXml(t.title)}</h2>`, htmlTable(t));
  out.push('</body></html>', '');
  return out.join('\n');
}
