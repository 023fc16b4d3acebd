/** Writes report.json (validated first), report.md and report.html into a folder, each atomically. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@quorum/core';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { Report } from './types.js';
import { assertValidReport } from './validate.js';

export interface WrittenReport {
  readonly json: string;
  readonly markdown: string;
  readonly html: string;
}

/** Validates `report` against the schema (throws a DataError listing the problems), then writes the three files. */
export async function writeReport(dir: string, report: Report): Promise<WrittenReport> {
  const json = path.join(dir, 'report.json');
  assertValidReport(report, json);
  mkdirSync(dir, { recursive: true });
  const files = { json, markdown: path.join(dir, 'report.md'), html: path.join(dir, 'report.html') };
  await writeFileAtomic(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(files.markdown, renderMarkdown(report));
  await writeFileAtomic(files.html, renderHtml(report));
  return files;
}
