// report.html opens from disk in a real browser (Debian's chromium, no network) and its charts draw data.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Report, writeReport } from '@quorum/eval';
import { afterAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from './chromium.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A report shaped like `quorum reproduce`'s (numbers are illustrative; the shape is what is tested). */
function sampleReport(): Report {
  const bon = (base: number) =>
    [1, 2, 4, 8].flatMap((n, i) => [
      { n, rule: 'mean', winRate: base + i, stderr: 1.5 },
      { n, rule: 'lcb', winRate: base + i + 0.5, stderr: 1.6 },
    ]);
  const arch = (accuracy: number, total: number, base: number) => ({
    accuracy,
    ece: 0.05,
    params: { total, trainable: total },
    trainSeconds: 30,
    bestOfN: bon(base),
  });
  return {
    schemaVersion: 1,
    meta: { preset: 'smoke', seeds: 1, backend: 'native' },
    architectures: {
      single: arch(0.6, 100, 70),
      'linear-heads': arch(0.62, 130, 71),
      lora: arch(0.63, 160, 72),
    },
    ppo: [0, 2, 4].flatMap((step) =>
      ['single', 'lora'].map((a, j) => ({
        arch: a,
        rule: 'mean',
        step,
        goldWinRate: 50 + step,
        stderr: 4,
        kl: step * 0.5,
        klEstimator: 'full',
        proxyReward: 1 + step * (0.3 + 0.1 * j),
        proxyMembers: [0.9 + step * 0.3, 1.1 + step * 0.3, 1 + step * 0.3],
        goldReward: 4 - 0.05 * step,
        lcWinRate: 50 + step / 2,
        lcStderr: 4.2,
      })),
    ),
    baselines: { random: { winRate: 77, stderr: 1.4, description: 'a random candidate' } },
  };
}

describe('report.html in headless Chromium', () => {
  it('opens from disk and every chart draws its series', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does this)`).toBe(
      true,
    );
    const written = await writeReport(dir, sampleReport());
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
      });
      await page.goto(pathToFileURL(written.html).href);
      const charts = await page.$$eval('svg[data-chart]', (svgs) =>
        svgs.map((svg) => ({
          chart: svg.getAttribute('data-chart'),
          points: Number(svg.getAttribute('data-points') ?? '0'),
          paths: svg.querySelectorAll('path, polyline, circle').length,
          width: (svg as SVGSVGElement).getBoundingClientRect().width,
          series: Array.from(svg.querySelectorAll('g[data-series-name]'), (g) => ({
            name: g.getAttribute('data-series-name'),
            circles: g.querySelectorAll('circle').length,
            // a drawn line has a length: the points are spread over the plot, not stacked on one spot
            length: (g.querySelector('path.line') as SVGPathElement | null)?.getTotalLength() ?? 0,
          })),
        })),
      );
      expect(charts.length).toBeGreaterThanOrEqual(2);
      // the over-optimisation curves (Gao et al. 2022) beside the step chart, one series per arch / rule
      expect(charts.map((c) => c.chart).filter((c) => c?.startsWith('ppo'))).toEqual([
        'ppo',
        'ppo-gold-kl',
        'ppo-proxy-kl',
        'ppo-lc',
      ]);
      for (const id of ['ppo-gold-kl', 'ppo-proxy-kl']) {
        const c = charts.find((x) => x.chart === id);
        expect(c?.series.map((s) => [s.name, s.circles])).toEqual([
          ['single / mean', 3],
          ['lora / mean', 3],
        ]);
        for (const s of c?.series ?? []) expect(s.length, `${id}: ${s.name}`).toBeGreaterThan(50);
      }
      expect(await page.locator('th', { hasText: 'KL to SFT (nats/answer, full)' }).count()).toBe(1);
      expect(await page.locator('th', { hasText: 'proxy reward' }).count()).toBeGreaterThan(0);
      for (const c of charts) {
        expect(c.points, `chart ${c.chart} has no data points`).toBeGreaterThan(0);
        expect(c.paths, `chart ${c.chart} drew nothing`).toBeGreaterThan(0);
        expect(c.width).toBeGreaterThan(100);
      }
      expect(await page.locator('table').count()).toBeGreaterThan(0);
      expect(requests).toEqual([]);
      await page.screenshot({
        path: process.env.QUORUM_REPORT_PNG ?? path.join(dir, 'report.png'),
        fullPage: true,
      });
    } finally {
      await browser.close();
    }
  });
});
