// The main job on a fresh checkout: `quorum reproduce --preset smoke` writes the three reports, the HTML
// draws its charts in a real browser, and a rerun continues from the cached stages.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertValidReport, type Report } from '@quorum/eval';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
const work = mkdtempSync(path.join(tmpdir(), 'quorum-reproduce-'));
const out = path.join(work, 'run');
afterAll(() => rmSync(work, { recursive: true, force: true }));

function reproduce(): { code: number | null; stderr: string; seconds: number } {
  const began = Date.now();
  const r = spawnSync(process.execPath, [bin, 'reproduce', '--preset', 'smoke', '--out', out], {
    cwd: root,
    env: { ...process.env, QUORUM_CACHE: path.join(work, 'cache') },
    encoding: 'utf8',
    timeout: 1_500_000,
  });
  return { code: r.status, stderr: r.stderr, seconds: (Date.now() - began) / 1000 };
}

describe('quorum reproduce --preset smoke (real process)', () => {
  it('writes report.json (valid against the schema), report.md and report.html', () => {
    const r = reproduce();
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    for (const f of ['report.json', 'report.md', 'report.html'])
      expect(existsSync(path.join(out, f)), f).toBe(true);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
    assertValidReport(report);
    expect(Object.keys(report.architectures).sort()).toEqual([
      'independent',
      'linear-heads',
      'lora',
      'single',
    ]);
    for (const a of Object.values(report.architectures)) {
      expect(a.accuracy).toBeGreaterThan(0);
      expect(a.bestOfN.length).toBeGreaterThan(0);
      for (const row of a.bestOfN) expect(row.winRate).toBeGreaterThanOrEqual(0);
    }
    expect(report.ppo.length).toBeGreaterThan(0);
    // The parameter counts follow the paper's formulas: k(M+L) for independent, M+kL for linear-heads.
    const single = report.architectures.single?.params.total as number;
    expect(report.architectures.independent?.params.total).toBe(3 * single);
    const L = 64 + 1; // the nano head: d_model weights + 1 bias
    expect(report.architectures['linear-heads']?.params.total).toBe(single + 2 * L);
    expect(r.stderr).toMatch(/report: .*report\.html/);
  });

  it('report.html opens from disk in headless Chromium and every chart drew data', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(path.join(out, 'report.html')).href);
      const points = await page.$$eval('svg[data-chart]', (svgs) =>
        svgs.map((s) => Number(s.getAttribute('data-points') ?? '0')),
      );
      expect(points.length).toBeGreaterThanOrEqual(2);
      for (const p of points) expect(p).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  });

  it('a rerun continues from the cached stages', () => {
    const r = reproduce();
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/continuing: \d+ stage\(s\) cached/);
    expect(r.stderr).not.toMatch(/▶/);
  });
});
