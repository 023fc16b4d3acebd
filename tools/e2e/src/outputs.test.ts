// Outputs are all or nothing, in real processes: `quorum score` refuses to write over its input, leaves no
// file behind when it fails (missing input, a bad row, a full disk, a bug) and keeps an earlier output
// untouched; an error that is not Quorum's own is one line (its stack only under --debug / QUORUM_DEBUG=1)
// with exit code 1. A tiny untrained reward model keeps every run to a second or two.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { saveTinyEnsemble } from '@quorum/ensemble/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
/** A plugin whose `explode` rule stands for a bug (apps/cli/test-fixtures/plugin-throws). */
const throws = path.join(root, 'apps/cli/test-fixtures/plugin-throws');
const dir = mkdtempSync(path.join(tmpdir(), 'quorum-e2e-outputs-'));
const at = (name: string): string => path.join(dir, name);
const model = at('rm');

function quorum(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, QUORUM_BACKEND: 'wasm', QUORUM_QUIET: '1', QUORUM_DEBUG: '', ...env },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const score = (input: string, out: string, ...extra: string[]) =>
  quorum(['score', '--model', model, '--input', input, '--out', out, ...extra]);

const row = (i: number): string =>
  JSON.stringify({ id: i, instruction: `Question ${i}?`, output: `Answer ${i}.` });
/** Temp files a failed write could leave in `dir`. */
const temps = (): string[] => readdirSync(dir).filter((f) => f.startsWith('.tmp-'));

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'cpu' });
  await saveTinyEnsemble(model);
  writeFileSync(at('rows.jsonl'), `${[0, 1, 2, 3, 4, 5].map(row).join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quorum score writes all or nothing (real process)', () => {
  it('scores into a new file', () => {
    const r = score('rows.jsonl', 'scored.jsonl', '--chunk', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(at('scored.jsonl'), 'utf8').trim().split('\n')).toHaveLength(6);
    expect(temps()).toEqual([]);
  });

  it('refuses an --out that is the --input, also through a symlink or a hard link, leaving the input intact', () => {
    const input = at('own.jsonl');
    writeFileSync(input, `${row(0)}\n${row(1)}\n`);
    const before = readFileSync(input, 'utf8');
    symlinkSync(input, at('own-symlink.jsonl'));
    linkSync(input, at('own-hardlink.jsonl'));
    const cases = [
      ['--out', 'own.jsonl'],
      ['--output', './own.jsonl'],
      ['--out', 'own-symlink.jsonl'],
      ['--out', 'own-hardlink.jsonl'],
    ];
    for (const [flag, out] of cases) {
      const r = quorum([
        'score',
        '--model',
        model,
        '--input',
        'own.jsonl',
        flag as string,
        out as string,
        '--overwrite',
      ]);
      expect(r.code, `${flag} ${out}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/is the input file own\.jsonl/);
      expect(readFileSync(input, 'utf8')).toBe(before);
    }
  });

  it('leaves no output file behind when the input is missing', () => {
    const r = score('missing.jsonl', 'from-missing.jsonl');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^quorum: missing\.jsonl: file not found/);
    expect(existsSync(at('from-missing.jsonl'))).toBe(false);
    expect(temps()).toEqual([]);
  });

  it('a bad row at line 5 leaves no partial output, and an earlier output untouched', () => {
    writeFileSync(
      at('bad.jsonl'),
      `${[row(0), row(1), row(2), row(3), '{"instruction":"x"}', row(5)].join('\n')}\n`,
    );
    const fresh = score('bad.jsonl', 'bad-new.jsonl', '--chunk', '2');
    expect(fresh.code).toBe(3);
    expect(fresh.stderr).toMatch(/^quorum: bad\.jsonl:5 field "output": is missing/);
    expect(existsSync(at('bad-new.jsonl'))).toBe(false);
    writeFileSync(at('bad-old.jsonl'), 'the earlier output\n');
    const again = score('bad.jsonl', 'bad-old.jsonl', '--chunk', '2', '--overwrite');
    expect(again.code).toBe(3);
    expect(readFileSync(at('bad-old.jsonl'), 'utf8')).toBe('the earlier output\n');
    expect(temps()).toEqual([]);
  });

  it('an --out in a missing folder is a data error naming the folder and the fix', () => {
    const r = score('rows.jsonl', 'no-such-folder/scored.jsonl');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^quorum: no-such-folder\/scored\.jsonl: could not write the file: ENOENT \(the folder .*no-such-folder does not exist\)\n {2}hint: create it first \(mkdir -p /,
    );
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it.runIf(existsSync('/dev/full'))(
    '--out /dev/full is a data error (no space left), not an internal one',
    () => {
      const r = score('rows.jsonl', '/dev/full');
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /^quorum: \/dev\/full: could not write the file: ENOSPC \(no space left on the device\)/,
      );
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    },
  );

  it('refuses a non-finite reward naming the row, writing nothing', () => {
    const r = score(
      'rows.jsonl',
      'nan.jsonl',
      '--plugin',
      throws,
      '--agg',
      'explode',
      '--agg-opt',
      'mode=nan',
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^quorum: rows\.jsonl:1: the aggregation rule "explode" turned the finite rewards/,
    );
    expect(existsSync(at('nan.jsonl'))).toBe(false);
  });

  it('bounds a chunk by bytes: a row longer than --chunk-bytes is an error naming the option', () => {
    writeFileSync(
      at('long.jsonl'),
      `${row(0)}\n${JSON.stringify({ instruction: 'q', output: 'x'.repeat(2000) })}\n`,
    );
    const r = score('long.jsonl', 'long-out.jsonl', '--chunk-bytes', '1000');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^quorum: long\.jsonl:2: the row is 2\.0 KiB, more than a chunk may hold \(1000 bytes\)/,
    );
    expect(r.stderr).toMatch(/--chunk-bytes/);
    expect(existsSync(at('long-out.jsonl'))).toBe(false);
    expect(score('long.jsonl', 'long-out.jsonl', '--chunk-bytes', '100000').code).toBe(0);
  });
});

describe('an internal error (real process)', () => {
  const explodeArgs = (out: string): string[] => [
    'score',
    '--model',
    model,
    '--input',
    'rows.jsonl',
    '--out',
    out,
    '--plugin',
    throws,
    '--agg',
    'explode',
    '--overwrite',
  ];
  const explode = (out: string, ...extra: string[]) => quorum([...explodeArgs(out), ...extra]);

  it('is one line without the stack, exit code 1, and rolls the output back', () => {
    writeFileSync(at('kept.jsonl'), 'the earlier output\n');
    const r = explode('kept.jsonl');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'quorum: internal error: boom from the explode rule (rerun with --debug for the stack, and please report it)\n',
    );
    expect(readFileSync(at('kept.jsonl'), 'utf8')).toBe('the earlier output\n');
    expect(temps()).toEqual([]);
  });

  it('shows the stack with --debug and with QUORUM_DEBUG=1', () => {
    for (const r of [
      explode('debug.jsonl', '--debug'),
      quorum(explodeArgs('debug.jsonl'), { QUORUM_DEBUG: '1' }),
    ]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^quorum: internal error: boom from the explode rule \(please report it\)\n/);
      expect(r.stderr).toMatch(/\n {4}at .*plugin-throws\/index\.js/);
    }
    expect(existsSync(at('debug.jsonl'))).toBe(false);
  });

  it('names the class and code of an error with no message', () => {
    const r = explode('empty.jsonl', '--agg-opt', 'message=', '--agg-opt', 'code=E_FIXTURE');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^quorum: internal error: Error \(no message, code E_FIXTURE\)/);
    expect(r.stderr).not.toMatch(/undefined/);
  });

  it('an unhandled rejection goes through the same handler and leaves no temp file', () => {
    const r = explode('rejected.jsonl', '--agg-opt', 'mode=reject', '--chunk', '1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^quorum: internal error: boom from the explode rule \(rerun with --debug/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(at('rejected.jsonl'))).toBe(false);
    expect(temps()).toEqual([]);
  });
});

describe('Ctrl-C in quorum score (real process)', () => {
  it('exits 130 and leaves neither the output nor a temp file', async () => {
    writeFileSync(at('many.jsonl'), `${Array.from({ length: 20_000 }, (_, i) => row(i)).join('\n')}\n`);
    const child = spawn(
      process.execPath,
      [bin, 'score', '--model', model, '--input', 'many.jsonl', '--out', 'interrupted.jsonl', '--chunk', '8'],
      { cwd: dir, env: { ...process.env, QUORUM_BACKEND: 'wasm', QUORUM_QUIET: '1' } },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The temp output exists from before the first row is scored until the rename.
    const deadline = Date.now() + 60_000;
    while (temps().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(temps(), stderr).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/SIGINT received: stopped/);
    expect(existsSync(at('interrupted.jsonl'))).toBe(false);
    expect(temps()).toEqual([]);
  }, 90_000);
});
