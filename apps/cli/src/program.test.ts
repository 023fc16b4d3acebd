// The one CLI grammar: --version, unknown commands, required options marked, shared options defined once,
// one error style with documented exit codes.
import { readFileSync } from 'node:fs';
import { BackendError, CheckpointError, ConfigError, DataError, RegistryError } from '@quorum/core';
import { RunInterrupted } from '@quorum/runs';
import { type Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  commanderMessage,
  debugRequested,
  describeError,
  EXIT_CODES,
  exitCodeOf,
  formatError,
} from './errors.js';
import { exitWithError } from './exit.js';
import { buildProgram, runCli } from './program.js';

/** A program whose output is captured instead of printed. */
function captured(): { program: Command; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const program = buildProgram();
  const configure = (c: Command): void => {
    c.configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      outputError: (s, write) => write(commanderMessage(s)),
      getOutHelpWidth: () => 100,
    });
    for (const sub of c.commands) configure(sub);
  };
  configure(program);
  return { program, out: () => out, err: () => err };
}

async function exitOf(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { program, out, err } = captured();
  try {
    await runCli(['node', 'quorum', ...args], program);
    return { code: 0, out: out(), err: err() };
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return { code: exitCodeOf(error), out: out(), err: err() };
  }
}

describe('quorum grammar', () => {
  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const r = await exitOf(['--version']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out.trim()).toBe(version);
  });

  it('an unknown command is a usage error listing the commands, with or without --help', async () => {
    for (const args of [['serve'], ['serve', '--help'], ['--backend', 'cpu', 'serve']]) {
      const r = await exitOf(args);
      expect(r.code).toBe(EXIT_CODES.usage);
      expect(r.err).toMatch(
        /^quorum: unknown command 'serve'\. Commands: reproduce, info, sft, .*eval, import, export\n/,
      );
      expect(r.out).toBe('');
    }
  });

  it("commander's own errors use the quorum: style and the usage exit code", async () => {
    const r = await exitOf(['info', '--nope']);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.err).toMatch(/^quorum: unknown option '--nope'/);
    const missing = await exitOf(['score', '--input', 'a.jsonl', '--out', 'b.jsonl']);
    expect(missing.err).toMatch(/^quorum: required option '--model <dir>' not specified/);
    const bad = await exitOf(['sft', '--out', 'x', '--max-steps', '0']);
    expect(bad.err).toMatch(/^quorum: option '--max-steps <n>' argument '0' is invalid/);
    expect(bad.code).toBe(EXIT_CODES.usage);
  });

  it('marks required options in every help and shows --beta, --seed and --overwrite the same way', async () => {
    const { program } = captured();
    const help = (name: string): string =>
      (program.commands.find((c) => c.name() === name) as Command).helpInformation();
    expect(help('score')).toMatch(
      /--model <dir>\s+reward-model folder written by `quorum train-rm` \(required\)/,
    );
    expect(help('score')).toMatch(/--out <file\.jsonl>\s+.*\(required\)/);
    expect(help('score')).not.toMatch(/--output/);
    expect(help('eval')).toMatch(/--policy <dir>[\s\S]*?\(required\)/);
    const line = (text: string, flag: string): string =>
      text
        .split('\n')
        .find((l) => l.trimStart().startsWith(flag))
        ?.replace(/\s+/g, ' ')
        .trim() ?? '';
    const beta = ['score', 'ppo', 'best-of-n', 'eval-rm'].map((c) => line(help(c), '--beta'));
    expect(new Set(beta).size).toBe(1);
    expect(beta[0]).toMatch(/lcb’s β/);
    for (const c of ['train-rm', 'sft', 'score', 'best-of-n', 'ppo', 'eval', 'reproduce'])
      expect(help(c), c).toMatch(/--overwrite/);
    for (const c of ['train-rm', 'sft', 'reproduce'])
      expect(help(c).replace(/\s+/g, ' '), c).toMatch(
        /--preset <preset>.*\(choices: "smoke", "default", "full", default: "\w+"\)/,
      );
  });

  it('documents the exit codes in the top-level help', () => {
    const { program } = captured();
    let text = '';
    program.configureOutput({ writeOut: (s) => (text += s) });
    program.outputHelp();
    expect(text).toMatch(
      /Exit codes:\n {2}0 .*\n {2}1 .*internal[\s\S]*\n {2}2 .*usage[\s\S]*\n {2}3 .*data[\s\S]*\n {2}130 /,
    );
  });

  it('maps each kind of error to its exit code, one message style', () => {
    expect(exitCodeOf(new ConfigError('x', {}))).toBe(2);
    expect(exitCodeOf(new RegistryError('x', {}))).toBe(2);
    expect(exitCodeOf(new BackendError('x', {}))).toBe(2);
    expect(exitCodeOf(new DataError('x', {}))).toBe(3);
    expect(exitCodeOf(new CheckpointError('x', {}))).toBe(3);
    expect(exitCodeOf(new RunInterrupted('training'))).toBe(130);
    expect(exitCodeOf(new TypeError('bug'))).toBe(1);
    expect(formatError(new DataError('bad row', { location: { file: 'a.jsonl', line: 2 } }))).toMatch(
      /^quorum: a\.jsonl:2: bad row/,
    );
    expect(formatError(new TypeError('bug'))).toBe(
      'quorum: internal error: TypeError: bug (rerun with --debug for the stack, and please report it)\n',
    );
  });

  it('an internal error is one line; --debug adds the stack and causes, for Quorum errors too', () => {
    const bug = new Error('boom', { cause: new Error('the cause') });
    expect(formatError(bug).split('\n')).toHaveLength(2); // one line and its newline
    expect(formatError(bug)).not.toMatch(/\n\s+at /);
    const debug = formatError(bug, { debug: true });
    expect(debug).toMatch(/^quorum: internal error: boom \(please report it\)\nError: boom\n\s+at /);
    expect(debug).toMatch(/the cause/);
    expect(formatError(new DataError('bad row', {}), { debug: true })).toMatch(
      /^quorum: bad row\nDataError: bad row\n\s+at /,
    );
  });

  it('describes any thrown value meaningfully, never as "undefined"', () => {
    expect(describeError(new RangeError('too deep'))).toBe('RangeError: too deep');
    expect(describeError(new Error(''))).toBe('Error (no message)');
    expect(describeError(Object.assign(new Error(''), { code: 'ERR_X' }))).toBe(
      'Error (no message, code ERR_X)',
    );
    expect(describeError(Object.assign(new Error('failed'), { code: 'EIO' }))).toBe('failed (code EIO)');
    expect(describeError(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))).toBe('EIO: i/o error');
    class WasmAbort extends Error {}
    expect(describeError(new WasmAbort())).toBe('WasmAbort (no message)');
    expect(describeError(new WasmAbort('abort(-1)'))).toBe('WasmAbort: abort(-1)');
    expect(describeError('line one\n line two')).toBe('line one line two');
    expect(describeError('')).toBe('an empty string was thrown');
    expect(describeError(undefined)).toBe('undefined was thrown instead of an error');
    expect(describeError(1234)).toBe('a number was thrown instead of an error: 1234');
    expect(describeError({ status: 5 })).toBe('an object was thrown instead of an error: { status: 5 }');
  });

  it('reads --debug (before a --) and QUORUM_DEBUG', () => {
    expect(debugRequested(['score', '--debug'], {})).toBe(true);
    expect(debugRequested(['score', '--', '--debug'], {})).toBe(false);
    expect(debugRequested(['score'], { QUORUM_DEBUG: '1' })).toBe(true);
    expect(debugRequested(['score'], { QUORUM_DEBUG: '0' })).toBe(false);
    expect(debugRequested(['score'], { QUORUM_DEBUG: '' })).toBe(false);
    expect(debugRequested(['score'], {})).toBe(false);
  });

  it('exitWithError prints once, frees the tensors and exits with the code of the error', () => {
    const run = (error: unknown, debug = false): { code: number; text: string } => {
      let text = '';
      let code = -1;
      try {
        exitWithError(error, {
          debug,
          write: (t) => (text += t),
          exit: (c) => {
            code = c;
            throw new Error('exited');
          },
        });
      } catch (e) {
        if ((e as Error).message !== 'exited') throw e;
      }
      return { code, text };
    };
    expect(run(new TypeError('bug'))).toEqual({
      code: 1,
      text: 'quorum: internal error: TypeError: bug (rerun with --debug for the stack, and please report it)\n',
    });
    expect(run(new DataError('bad', {}))).toEqual({ code: 3, text: 'quorum: bad\n' });
    expect(run(new CommanderError(2, 'commander.unknownOption', 'printed by commander'))).toEqual({
      code: 2,
      text: '',
    });
  });
});
