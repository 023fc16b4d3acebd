// The docs cannot rot: the CLI reference is regenerated from the commands' own help and compared.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('docs', () => {
  it("docs/cli.md matches the commands' --help (regenerate with node tools/scripts/cli-reference.mjs)", () => {
    const r = spawnSync(process.execPath, ['tools/scripts/cli-reference.mjs', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
  });

  it('every guide code block equals its type-checked snippet file, and the snippets type-check', () => {
    const blocks = spawnSync(process.execPath, ['docs/guides/check-snippets.mjs'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(blocks.status, blocks.stderr + blocks.stdout).toBe(0);
    const tsc = spawnSync(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'docs/guides'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(tsc.status, tsc.stdout).toBe(0);
  });
});
