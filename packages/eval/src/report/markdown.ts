/** report.md: the report's tables in GitHub-flavoured Markdown. */
import type { Report } from './types.js';

const f1 = (x: number): string => x.toFixed(1);
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

/** Distinct values in first-seen order. */
export function distinct<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

/** The win-rate cell: `w ± se` (and `(±spread over seeds)` when known). */
export function winCell(winRate: number, stderr: number | undefined, spread?: number): string {
  let s = stderr === undefined ? f1(winRate) : `${f1(winRate)} ± ${f1(stderr)}`;
  if (spread !== undefined) s += ` (seeds ±${f1(spread)})`;
  return s;
}

export function renderMarkdown(report: Report): string {
  const out: string[] = ['# Quorum report', ''];
  const meta = report.meta ?? {};
  const facts = Object.entries(meta).filter(([, v]) => typeof v === 'string' || typeof v === 'number');
  if (facts.length > 0) {
    out.push(facts.map(([k, v]) => `- ${k}: ${String(v)}`).join('\n'), '');
  }
  const archs = Object.entries(report.architectures);
  out.push('## Reward models', '');
  out.push(
    table(
      ['architecture', 'accuracy %', 'ECE', 'params (total)', 'params (trainable)', 'train s'],
      archs.map(([name, a]) => [
        name,
        f1(100 * a.accuracy),
        a.ece.toFixed(3),
        a.params.total.toLocaleString('en-US'),
        a.params.trainable.toLocaleString('en-US'),
        f1(a.trainSeconds),
      ]),
    ),
    '',
  );
  const rules = distinct(archs.flatMap(([, a]) => a.bestOfN.map((r) => r.rule)));
  const ns = distinct(archs.flatMap(([, a]) => a.bestOfN.map((r) => r.n))).sort((x, y) => x - y);
  if (ns.length > 0) {
    out.push('## Best-of-n win rate vs the reference (%, ± stderr over prompts)', '');
    const cols = archs.flatMap(([name]) => rules.map((rule) => [name, rule] as const));
    const present = cols.filter(([name, rule]) =>
      report.architectures[name]!.bestOfN.some((r) => r.rule === rule),
    );
    out.push(
      table(
        ['n', ...present.map(([name, rule]) => `${name} / ${rule}`)],
        ns.map((n) => [
          String(n),
          ...present.map(([name, rule]) => {
            const row = report.architectures[name]!.bestOfN.find((r) => r.n === n && r.rule === rule);
            return row === undefined ? '–' : winCell(row.winRate, row.stderr, row.seedSpread);
          }),
        ]),
      ),
      '',
    );
  }
  if (report.ppo.length > 0) {
    out.push('## PPO: gold win rate vs the SFT policy', '');
    out.push(
      table(
        ['architecture', 'rule', 'step', 'gold win rate %', 'KL'],
        report.ppo.map((p) => [
          p.arch,
          p.rule ?? '',
          String(p.step),
          winCell(p.goldWinRate, p.stderr),
          p.kl.toFixed(3),
        ]),
      ),
      '',
    );
  }
  if (report.baselines !== undefined && Object.keys(report.baselines).length > 0) {
    out.push('## Baselines', '');
    out.push(
      table(
        ['baseline', 'win rate %', 'what'],
        Object.entries(report.baselines).map(([k, b]) => [
          k,
          winCell(b.winRate, b.stderr),
          b.description ?? '',
        ]),
      ),
      '',
    );
  }
  if (report.timings !== undefined && Object.keys(report.timings).length > 0) {
    out.push('## Timings', '');
    out.push(
      table(
        ['stage', 'seconds'],
        Object.entries(report.timings).map(([k, s]) => [k, f1(s)]),
      ),
      '',
    );
  }
  return out.join('\n');
}
