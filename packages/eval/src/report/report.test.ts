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

  it('draws one Best-of-n chart per rule and a PPO chart, each carrying its data', () => {
    const html = renderHtml(sampleReport);
    const charts = [
      ...html.matchAll(/<svg [^>]*data-chart="([^"]+)" data-series="(\d+)" data-points="(\d+)"/g),
    ].map((m) => [m[1], Number(m[2]), Number(m[3])]);
    expect(charts).toEqual([
      ['best-of-n/mean', 2, 8],
      ['best-of-n/lcb', 2, 8],
      ['ppo', 2, 4],
    ]);
    expect(html.match(/class="band"/g)?.length).toBe(5); // 4 Best-of-n series + the PPO series with stderr
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
