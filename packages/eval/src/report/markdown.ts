/** report.md: the report's tables (`reportTables`) in GitHub-flavoured Markdown. */
import { type ReportTable, reportTables } from './tables.js';
import type { Report } from './types.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table({ header, rows }: ReportTable): string {
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

export function renderMarkdown(report: Report): string {
  const out: string[] = ['# Quorum report', ''];
  const meta = report.meta ?? {};
  const facts = Object.entries(meta).filter(([, v]) => typeof v === 'string' || typeof v === 'number');
  if (facts.length > 0) {
    out.push(facts.map(([k, v]) => `- ${k}: ${String(v)}`).join('\n'), '');
  }
  for (const t of reportTables(report)) out.push(`## ${t.title}`, '', table(t), '');
  return out.join('\n');
}
