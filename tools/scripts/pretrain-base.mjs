// Builds Quorum's base language model: `quorum sft --objective lm` over the whole shipped corpus (every
// AlpacaEval train-split instruction and answer, every HH-RLHF dialogue, deduplicated), niced, with the
// command recorded in the output's quorum.json (training.command) so the folder can be rebuilt.
//
//   node tools/scripts/pretrain-base.mjs [--size micro] [--context 256] [--max-tokens 10M] [--batch-size 16]
//                                        [--out models/base-micro] [--resume] [-- <more quorum sft flags>]
//
// Defaults read ~10M tokens with a micro model and a 256-token context. Ctrl-C stops at the next checkpoint;
// run the same command with --resume to continue. Build the CLI first (`npm ci` does, or
// `NX_DAEMON=false npx nx run cli:build`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const cli = path.join(root, 'apps/cli/bin/quorum.js');

const defaults = { size: 'micro', context: '256', 'max-tokens': '10M', 'batch-size': '16' };
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash < 0 ? argv : argv.slice(0, dash);
const extra = dash < 0 ? [] : argv.slice(dash + 1);
const opts = { ...defaults };
let resume = false;
for (let i = 0; i < own.length; i++) {
  const flag = own[i];
  if (flag === '--resume') resume = true;
  else if (flag === '--help' || flag === '-h') {
    console.log(
      readFileSync(new URL(import.meta.url), 'utf8')
        .split('\n')
        .slice(0, 10)
        .join('\n'),
    );
    process.exit(0);
  } else if (flag?.startsWith('--') && own[i + 1] !== undefined && flag.slice(2) in { ...defaults, out: 1 })
    opts[flag.slice(2)] = own[++i];
  else {
    console.error(`pretrain-base: unknown argument ${flag} (flags for quorum sft go after --)`);
    process.exit(2);
  }
}
const out = opts.out ?? path.join('models', `base-${opts.size}`);
if (!existsSync(cli)) {
  console.error(
    `pretrain-base: ${cli} is missing; build the CLI first: NX_DAEMON=false npx nx run cli:build`,
  );
  process.exit(2);
}

const args = [
  'sft',
  '--objective',
  'lm',
  '--data',
  'corpus',
  '--size',
  opts.size,
  '--max-length',
  opts.context,
  '--max-tokens',
  opts['max-tokens'],
  '--batch-size',
  opts['batch-size'],
  '--out',
  out,
  ...(resume ? ['--resume'] : []),
  ...extra,
];
console.log(`pretrain-base: nice -n 10 quorum ${args.join(' ')}`);
const started = Date.now();
const run = spawnSync('nice', ['-n', '10', process.execPath, cli, ...args], {
  stdio: 'inherit',
  cwd: process.cwd(),
});
if (run.status !== 0) process.exit(run.status ?? 1);

const manifestFile = path.join(out, 'quorum.json');
if (!existsSync(manifestFile)) process.exit(0); // stopped early: resume with --resume
const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
const t = manifest.training ?? {};
const bytes = readdirSync(out)
  .filter((f) => statSync(path.join(out, f)).isFile())
  .reduce((n, f) => n + statSync(path.join(out, f)).size, 0);
const seconds = (Date.now() - started) / 1000;
console.log(
  [
    `pretrain-base: ${out}: ${t.steps} steps, ~${t.tokensTrained} tokens trained in ${seconds.toFixed(0)} s (${Math.round((t.tokensTrained ?? 0) / seconds)} tok/s incl. tokenising)`,
    `  held-out loss ${t.initialEvalLoss?.toFixed?.(3)} → ${t.evalLoss?.toFixed?.(3)}; folder ${(bytes / 2 ** 20).toFixed(1)} MiB without train-state (f32 weights; about half in f16)`,
    `  rebuild with: ${t.command}`,
  ].join('\n'),
);
