import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { Report } from './types.js';
import { reportSchema, validateReport } from './validate.js';
import { writeReport } from './write.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const bon = (rule: string, rates: number[]) =>
  [1, 2, 4, 8].map((n, i) => ({
    n,
    rule,
    winRate: rates[i] as number,
    stderr: 3.5,
    ...(rule === 'lcb' ? { seedSpread: 1.2 } : {}),
  }));

const sampleReport: Report = {
  schemaVersion: 1,
  meta: { preset: 'smoke', seeds: 1, backend: 'wasm', createdAt: '2024-01-01T00:00:00Z' },
  architectures: {
    single: {
      accuracy: 0.61,
      ece: 0.05,
      params: { total: 120_000, trainable: 120_000 },
      trainSeconds: 12.5,
      bestOfN: [...bon('mean', [20, 24, 27, 26]), ...bon('lcb', [20, 25, 28, 29])],
    },
    'linear-heads': {
      accuracy: 0.63,
      ece: 0.04,
      params: { total: 120_130, trainable: 120_130 },
      trainSeconds: 13,
      bestOfN: [...bon('mean', [20, 25, 29, 30]), ...bon('lcb', [20, 26, 30, 32])],
    },
  },
  ppo: [
    { arch: 'single', step: 0, goldWinRate: 50, kl: 0 },
    { arch: 'single', step: 10, goldWinRate: 55, kl: 0.4, stderr: 4 },
    { arch: 'linear-heads', step: 0, goldWinRate: 50, kl: 0 },
    { arch: 'linear-heads', step: 10, goldWinRate: 58, kl: 0.3 },
  ],
  timings: { 'train-rm/single': 12.5 },
  baselines: { 'longest-answer': { winRate: 31, stderr: 3, description: 'pick the longest <answer>' } },
};

describe('report', () => {
  it('writes report.json, report.md and report.html', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-report-'));
    dirs.push(dir);
    const files = await writeReport(dir, sampleReport);
    const json = JSON.parse(readFileSync(files.json, 'utf8')) as unknown;
    expect(json).toEqual(sampleReport);
    expect(validateReport(json)).toEqual([]);
    const md = readFileSync(files.markdown, 'utf8');
    expect(md).toContain('| n | single / mean | single / lcb | linear-heads / mean | linear-heads / lcb |');
    expect(md).toContain('| 8 | 26.0 ± 3.5 | 29.0 ± 3.5 (seeds ±1.2) |');
    const html = readFileSync(files.html, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // nothing fetched from the network
    expect(html).not.toContain('<script');
    expect(html).toContain('pick the longest &lt;answer&gt;');
    // One table model, rendered twice: every Markdown table is in the HTML with the same cells.
    expect(html).toContain(
      '<th>n</th><th>single / mean</th><th>single / lcb</th><th>linear-heads / mean</th><th>linear-heads / lcb</th>',
    );
    expect(html).toContain('<td>8</td><td>26.0 ± 3.5</td><td>29.0 ± 3.5 (seeds ±1.2)</td>');
    const headings = (text: string, re: RegExp): string[] =>
      [...text.matchAll(re)].map((m) => m[1] as string);
    expect(headings(html, /<h2>([^<]+)<\/h2>/g).filter((h) => h !== 'Charts')).toEqual(
      headings(md, /^## (.+)$/gm).map((h) =>
        h.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
      ),
    );
  });

  it('draws one Best-of-n chart per rule and the PPO charts over step and KL, each carrying its data', () => {
    const html = renderHtml(sampleReport);
    const charts = [
      ...html.matchAll(/<svg [^>]*data-chart="([^"]+)" data-series="(\d+)" data-points="(\d+)"/g),
    ].map((m) => [m[1], Number(m[2]), Number(m[3])]);
    expect(charts).toEqual([
      ['best-of-n/mean', 2, 8],
      ['best-of-n/lcb', 2, 8],
      ['ppo', 2, 4],
      ['ppo-gold-kl', 2, 4], // an older report: no proxy reward, so no proxy-reward chart
    ]);
    // 4 Best-of-n series + the PPO series with stderr, over step and over KL
    expect(html.match(/class="band"/g)?.length).toBe(6);
    // the points name no estimator: the KL axis says so rather than guess
    expect(html).toContain('mean over answers of the sum over answer tokens; estimator not recorded');
    expect(html).toContain('data-series-name="linear-heads" data-points="4"');
  });

  it('draws the baselines on every Best-of-n chart, LC charts beside the raw ones, and LC columns in the tables', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test adds the optional fields to a clone
    const withLc = structuredClone(sampleReport) as unknown as Record<string, any>;
    for (const a of Object.values(withLc.architectures) as { bestOfN: Record<string, number>[] }[]) {
      for (const r of a.bestOfN) {
        r.lcWinRate = (r.winRate as number) - 5;
        r.lcStderr = 4;
        r.rewardLengthPearson = 0.31;
        r.rewardLengthSpearman = 0.28;
      }
    }
    withLc.ppo[1].lcWinRate = 52;
    withLc.ppo[1].lcStderr = 4.5;
    withLc.baselines.random = { winRate: 22, stderr: 3, lcWinRate: 21, lcStderr: 3.1 };
    withLc.bestOfNBaselines = {
      longest: {
        description: 'the longest of n candidates',
        points: [1, 2, 4, 8].map((n, i) => ({
          n,
          winRate: 22 + 3 * i,
          stderr: 3,
          lcWinRate: 20,
          lcStderr: 3,
        })),
      },
      random: {
        points: [1, 2, 4, 8].map((n) => ({ n, winRate: 22, stderr: 3, lcWinRate: 21, lcStderr: 3.1 })),
      },
    };
    const report = withLc as unknown as Report;
    expect(validateReport(report)).toEqual([]);
    const html = renderHtml(report);
    const charts = [
      ...html.matchAll(/<svg [^>]*data-chart="([^"]+)" data-series="(\d+)" data-points="(\d+)"/g),
    ].map((m) => [m[1], Number(m[2]), Number(m[3])]);
    expect(charts).toEqual([
      ['best-of-n/mean', 4, 16],
      ['best-of-n-lc/mean', 4, 16],
      ['best-of-n/lcb', 4, 16],
      ['best-of-n-lc/lcb', 4, 16],
      ['ppo', 2, 4],
      ['ppo-gold-kl', 2, 4],
      ['ppo-lc', 1, 1],
    ]);
    // each Best-of-n chart draws both baselines as dashed lines
    expect(
      html.match(/data-series-name="longest answer" data-points="4" data-baseline="true"/g),
    ).toHaveLength(4);
    expect(html.match(/data-series-name="random answer" data-points="4" data-baseline="true"/g)).toHaveLength(
      4,
    );
    const md = renderMarkdown(report);
    expect(md).toContain(
      '| n | single / mean | single / mean LC | single / lcb | single / lcb LC | linear-heads / mean | linear-heads / mean LC | linear-heads / lcb | linear-heads / lcb LC | longest | longest LC | random | random LC |',
    );
    expect(md).toContain('| 8 | 26.0 ± 3.5 | 21.0 ± 4.0 | 29.0 ± 3.5 (seeds ±1.2) | 24.0 ± 4.0 |');
    expect(md).toContain('| 31.0 ± 3.0 | 20.0 ± 3.0 | 22.0 ± 3.0 | 21.0 ± 3.1 |');
    expect(md).toContain('## Best-of-n reward–length correlation of the picked answers (Pearson / Spearman)');
    expect(md).toContain('| 1 | 0.31 / 0.28 | 0.31 / 0.28 |');
    expect(md).toContain('| single |  | 10 | 55.0 ± 4.0 | 52.0 ± 4.5 | 0.400 |');
    expect(md).toContain('| random | 22.0 ± 3.0 | 21.0 ± 3.1 |');
    // older reports (no LC, no baseline curves) keep their tables: see the first test's exact rows
  });

  it('accepts PPO points with the proxy and gold rewards, and draws gold win rate and proxy reward vs KL', () => {
    // What `quorum reproduce` now writes: the exact full KL, proxy/gold rewards, LC and seed spreads.
    const ppo = [0, 10, 20].flatMap((step, i) =>
      (['single', 'linear-heads'] as const).map((arch, j) => ({
        arch,
        rule: 'mean',
        step,
        goldWinRate: 50 + 4 * i - j,
        stderr: 3,
        seedSpread: 1.5,
        kl: [0, 0.25, 1.5][i] as number,
        klEstimator: 'full',
        proxyReward: 1 + i + 0.5 * j,
        proxyMembers: [0.9 + i, 1.1 + i],
        goldReward: 4 + 0.1 * i,
        lcWinRate: 50 + 3 * i,
        lcStderr: 3.2,
        lcSeedSpread: 1.1,
        rewardLengthPearson: 0.25,
        rewardLengthSpearman: -0.1,
      })),
    );
    const report: Report = { ...sampleReport, ppo };
    expect(validateReport(report)).toEqual([]);
    const html = renderHtml(report);
    const charts = [
      ...html.matchAll(/<svg [^>]*data-chart="([^"]+)" data-series="(\d+)" data-points="(\d+)"/g),
    ].map((m) => [m[1], Number(m[2]), Number(m[3])]);
    expect(charts.slice(2)).toEqual([
      ['ppo', 2, 6],
      ['ppo-gold-kl', 2, 6],
      ['ppo-proxy-kl', 2, 6],
      ['ppo-lc', 2, 6],
    ]);
    const chart = (id: string): string => {
      const start = html.indexOf(`data-chart="${id}"`);
      return html.slice(start, html.indexOf('</svg>', start));
    };
    // x is the KL, y the gold win rate / the proxy reward, one series per architecture and rule
    const points = (svg: string, series: string): string[] => {
      const g = svg.slice(svg.indexOf(`data-series-name="${series}"`));
      return [...g.slice(0, g.indexOf('</g>')).matchAll(/data-x="([^"]+)" data-y="([^"]+)"/g)].map(
        (m) => `${m[1]}→${m[2]}`,
      );
    };
    expect(points(chart('ppo-gold-kl'), 'single / mean')).toEqual(['0→50', '0.25→54', '1.5→58']);
    expect(points(chart('ppo-gold-kl'), 'linear-heads / mean')).toEqual(['0→49', '0.25→53', '1.5→57']);
    expect(points(chart('ppo-proxy-kl'), 'single / mean')).toEqual(['0→1', '0.25→2', '1.5→3']);
    expect(points(chart('ppo-proxy-kl'), 'linear-heads / mean')).toEqual(['0→1.5', '0.25→2.5', '1.5→3.5']);
    // the KL axis says which KL: the exact full-distribution one, per answer
    for (const id of ['ppo-gold-kl', 'ppo-proxy-kl']) {
      expect(chart(id)).toContain('KL to SFT (nats/answer): exact full-distribution KL');
      expect(chart(id)).toContain('mean over answers of the sum over answer tokens');
    }
    expect(chart('ppo-gold-kl')).toContain('class="band"'); // ± stderr
    expect(chart('ppo-proxy-kl')).not.toContain('class="band"'); // no stderr for the proxy reward

    const md = renderMarkdown(report);
    expect(md).toContain(
      '| architecture | rule | step | gold win rate % | LC gold win rate % | proxy reward | proxy members | gold reward | KL to SFT (nats/answer, full) | gold reward–length r (Pearson / Spearman) |',
    );
    expect(md).toContain(
      '| single | mean | 10 | 54.0 ± 3.0 (seeds ±1.5) | 53.0 ± 3.2 (seeds ±1.1) | 2.000 | 1.90 / 2.10 | 4.100 | 0.250 | 0.25 / -0.10 |',
    );
    expect(renderHtml(report)).toContain('<th>KL to SFT (nats/answer, full)</th>');
  });

  it('names the KL estimator per row when the points mix them, and leaves absent columns out', () => {
    const report: Report = {
      ...sampleReport,
      ppo: [
        { arch: 'single', step: 0, goldWinRate: 50, kl: 0, klEstimator: 'full', goldReward: 3 },
        { arch: 'single', step: 10, goldWinRate: 55, kl: 0.4, klEstimator: 'k1' },
      ],
    };
    expect(validateReport(report)).toEqual([]);
    const md = renderMarkdown(report);
    expect(md).toContain(
      '| architecture | rule | step | gold win rate % | gold reward | KL to SFT (nats/answer) | KL estimator |',
    );
    expect(md).toContain('| single |  | 10 | 55.0 | – | 0.400 | k1 |');
    const html = renderHtml(report);
    expect(html).not.toContain('data-chart="ppo-proxy-kl"');
    expect(html).toContain('estimators full, k1');
  });

  it('the validator rejects malformed reports, naming each field', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks a clone into invalid shapes
    const bad = structuredClone(sampleReport) as unknown as Record<string, any>;
    bad.schemaVersion = 2;
    bad.architectures.single.accuracy = 61; // a percentage where 0–1 is expected
    bad.architectures.single.bestOfN[0].winRate = Number.NaN;
    bad.architectures.single.bestOfN.push({ n: 1, rule: 'mean', winRate: 10, stderr: 1 });
    delete bad.architectures['linear-heads'].params.trainable;
    bad.ppo[0].goldWinRate = 150;
    bad.ppo[1].extra = true;
    bad.ppo[2].proxyMembers = [1, 'two'];
    bad.ppo[3].seedSpread = -1;
    bad.ppo[3].klEstimator = '';
    bad.architectures.single.bestOfN[1].rewardLengthPearson = 1.5;
    bad.bestOfNBaselines = { longest: { points: [{ n: 0, winRate: 10 }] } };
    const errors = validateReport(bad);
    expect(errors).toEqual(
      expect.arrayContaining([
        '$.schemaVersion: must be 1, got 2',
        '$.architectures.single.accuracy: must be ≤ 1, got 61',
        '$.architectures.single.bestOfN[0].winRate: expected number, got NaN',
        '$.architectures.linear-heads.params: "trainable" is required',
        '$.ppo[0].goldWinRate: must be ≤ 100, got 150',
        '$.ppo[1]: unknown field "extra"',
        '$.ppo[2].proxyMembers[1]: expected number, got "two"',
        '$.ppo[3].seedSpread: must be ≥ 0, got -1',
        '$.ppo[3].klEstimator: must have at least 1 character(s)',
        '$.architectures.single.bestOfN[1].rewardLengthPearson: must be ≤ 1, got 1.5',
        '$.bestOfNBaselines.longest.points[0].n: must be ≥ 1, got 0',
      ]),
    );
    expect(validateReport({ schemaVersion: 1, architectures: {}, ppo: [] })).toEqual([]);
    expect(validateReport(null)).toEqual(['$: expected object, got null']);
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks a clone into invalid shapes
    const dup = structuredClone(sampleReport) as unknown as Record<string, any>;
    dup.architectures.single.bestOfN.push({ n: 2, rule: 'mean', winRate: 1, stderr: 1 });
    expect(validateReport(dup)).toEqual([
      '$.architectures.single.bestOfN[8]: n = 2 with rule "mean" is listed twice',
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-report-bad-'));
    dirs.push(dir);
    await expect(writeReport(dir, bad as unknown as Report)).rejects.toThrow(
      /does not follow report.schema.json/,
    );
  });

  it('reads the committed schema with zod, and docs/schemas holds the same file', () => {
    expect(() => validateReport(sampleReport)).not.toThrow();
    expect(reportSchema().required).toEqual(['schemaVersion', 'architectures', 'ppo']);
    const docs = new URL('../../../../docs/schemas/report.schema.json', import.meta.url);
    expect(JSON.parse(readFileSync(docs, 'utf8'))).toEqual(reportSchema());
    // zod's JSON Schema round trip keeps what the checks rely on (required fields, closed objects, bounds).
    const back = z.toJSONSchema(
      z.fromJSONSchema(reportSchema() as Parameters<typeof z.fromJSONSchema>[0]),
    ) as {
      required?: string[];
      additionalProperties?: unknown;
    };
    expect(back.required).toEqual(['schemaVersion', 'architectures', 'ppo']);
    expect(back.additionalProperties).toBe(false);
    expect(validateReport({ schemaVersion: 1, architectures: {}, ppo: [], meta: { seeds: 0.5 } })).toEqual([
      '$.meta.seeds: expected integer, got 0.5',
    ]);
    expect(
      validateReport({ schemaVersion: 1, architectures: {}, ppo: [], timings: { sft: Infinity } }),
    ).toEqual(['$.timings.sft: expected number, got Infinity']);
  });
});
