import { createRequire } from 'node:module';
import { escapeUntrusted } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import { type CliContext, createContext, type GlobalOptions, startCompute } from '../context.js';
import { QUORUM_PACKAGES } from '../modules.js';

export interface InfoReport {
  backend: { name: string; threads: number; reason: string; details?: string };
  strategies: Record<string, string[]>;
  plugins: { name: string; entry: string }[];
  versions: Record<string, string>;
}

function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

export async function infoReport(ctx: CliContext): Promise<InfoReport> {
  const backend = await startCompute(ctx);
  const strategies: Record<string, string[]> = {};
  for (const [id, registry] of ctx.registries) strategies[id] = registry.names();
  const versions: Record<string, string> = {
    node: process.versions.node,
    '@tensorflow/tfjs': tf.version.tfjs,
  };
  for (const name of QUORUM_PACKAGES) {
    const v = packageVersion(name);
    if (v !== undefined) versions[name] = v;
  }
  return {
    backend: {
      name: backend.name,
      threads: backend.threads,
      reason: backend.reason,
      ...(backend.details === undefined ? {} : { details: backend.details }),
    },
    strategies,
    plugins: ctx.plugins.map((p) => ({ name: p.name, entry: p.entry })),
    versions,
  };
}

/**
 * Text from plugins and their definitions (names, descriptions, sources, entries) printed escaped, so
 * that a control sequence or a line break in it cannot rewrite the terminal or forge a line.
 */
const shown = escapeUntrusted;

function renderInfo(report: InfoReport, ctx: CliContext): string {
  const lines: string[] = [];
  lines.push(
    `backend     ${report.backend.name} (${report.backend.threads === 0 ? 'threads managed by the library' : `${report.backend.threads} thread${report.backend.threads === 1 ? '' : 's'}`})`,
  );
  lines.push(`            why: ${shown(report.backend.reason)}`);
  if (report.backend.details !== undefined) lines.push(`            ${shown(report.backend.details)}`);
  lines.push('');
  lines.push('strategies (extension point: registered names)');
  for (const [id, registry] of ctx.registries) {
    lines.push(`  ${id}: ${registry.names().map(shown).join(', ') || '(none)'}`);
    for (const d of registry.definitions())
      lines.push(`      ${shown(d.name).padEnd(16)} ${shown(d.description)}  [${shown(d.source)}]`);
  }
  lines.push('');
  lines.push(
    `plugins     ${report.plugins.length === 0 ? '(none)' : report.plugins.map((p) => `${shown(p.name)} (${shown(p.entry)})`).join('\n            ')}`,
  );
  lines.push('');
  lines.push('versions');
  for (const [name, v] of Object.entries(report.versions)) lines.push(`  ${name.padEnd(26)} ${shown(v)}`);
  return lines.join('\n');
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show versions, the active compute backend and every registered strategy')
    .option(
      '--json',
      'print the report as JSON: {"backend": {"name", "threads", "reason"}, "strategies": {point: [names]}, "versions": {...}}',
    )
    .addHelpText(
      'after',
      `
The backend is chosen by --backend, "backend" in quorum.config.json, or QUORUM_BACKEND, else the fastest
one that loads here; "why" says why it is active (e.g. why a faster one is not). Strategies are listed per
extension point, so a plugin loaded with --plugin shows up here.

Examples:
  $ quorum info
  $ quorum info --json
  $ QUORUM_BACKEND=cpu quorum info
  $ quorum info --plugin ./examples/plugin-warm`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const report = await infoReport(ctx);
      process.stdout.write(
        `${opts.json === true ? JSON.stringify(report, null, 2) : renderInfo(report, ctx)}\n`,
      );
    });
}
