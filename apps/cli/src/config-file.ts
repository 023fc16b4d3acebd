/** `quorum.config.json`: project-level settings every command reads (plugins, backend). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

export const ProjectConfigSchema = z
  .object({
    /** Plugins to load, as for --plugin (package names or paths relative to the config file). */
    plugins: z.array(z.string()).default([]),
    /** Compute backend name (overridden by --backend; QUORUM_BACKEND applies when neither is set). */
    backend: z.string().optional(),
  })
  .strict();

export type ProjectConfig = z.output<typeof ProjectConfigSchema>;

/** Reads `file` (default ./quorum.config.json when present). Plugin paths are made relative to cwd. */
export function readProjectConfig(file: string | undefined, cwd: string): ProjectConfig & { file?: string } {
  const target = file ?? path.join(cwd, 'quorum.config.json');
  if (!existsSync(target)) {
    if (file !== undefined) {
      throw new ConfigError(`config file ${file} does not exist`, {
        location: { field: '--config' },
        hint: 'check the path',
      });
    }
    return { plugins: [] };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(target, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`is not valid JSON: ${(cause as Error).message}`, {
      location: { file: target },
      hint: 'fix the JSON syntax',
      cause,
    });
  }
  const config = resolveOptions(ProjectConfigSchema, raw, '', target);
  const base = path.dirname(target);
  const plugins = config.plugins.map((p) => (p.startsWith('.') ? path.resolve(base, p) : p));
  return { ...config, plugins, file: target };
}
