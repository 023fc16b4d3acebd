/**
 * `quorum eval`: the paper's two benchmarks for any policy. Generates the policy's answers (seeded,
 * greedy by default) to the shipped AlpacaEval eval-split instructions or the MT-Bench questions (both
 * turns; the second conditioned on the first answer) and grades them with a judge: pairwise against the
 * shipped text-davinci-003 reference for AlpacaEval, single-answer 1–10 for MT-Bench. Items the judge
 * could not grade (code E_JUDGE, e.g. an endpoint that kept failing) are recorded as failed and left out.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type GenerateResult, generate } from '@quorum/backbone';
import { ConfigError, Rng, registryFor, writeFileAtomic } from '@quorum/core';
import { conversationPrompt, datasets, encodePrompt, type Prompt, REFERENCE_GENERATOR } from '@quorum/data';
import {
  evalModule,
  isJudgeError,
  Judge,
  llmJudge,
  meanStderr,
  type Outcome,
  outcomeOf,
  winRate,
} from '@quorum/eval';
import { type Command, Option } from 'commander';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { loadPolicyWithTokenizer, parseKeyValues } from '../load.js';

export interface EvalCommandOptions {
  bench: 'alpaca-eval' | 'mt-bench';
  policy: string;
  judge: string;
  judgeOpt?: string[];
  limit?: number;
  out?: string;
  seed: number;
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  resume?: boolean;
  overwrite?: boolean;
}

const OUT_FILES = ['answers.jsonl', 'eval.json', 'judge-cache.jsonl'];

function checkOut(o: EvalCommandOptions): void {
  if (o.out === undefined || !existsSync(o.out) || readdirSync(o.out).length === 0) return;
  if (o.overwrite === true) {
    for (const f of OUT_FILES) rmSync(path.join(o.out, f), { force: true });
    return;
  }
  if (o.resume !== true) {
    throw new ConfigError(`--out ${o.out} is not empty`, {
      location: { field: '--out' },
      hint: 'pass --resume to reuse its judge verdicts, --overwrite to start over, or another --out',
    });
  }
}

const positiveInt =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0)
      throw new ConfigError(`expects a positive integer, got "${v}"`, { location: { field: flag } });
    return n;
  };

/** Runs the command; returns what it printed as a summary object (also written to OUT/eval.json). */
export async function runEval(
  globals: GlobalOptions,
  o: EvalCommandOptions,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<Record<string, unknown>> {
  checkOut(o);
  const ctx = await createContext(globals);
  await startCompute(ctx);
  if (!ctx.registries.has(Judge.id)) ctx.container.load(evalModule()); // until the CLI loads it by default
  const judges = registryFor(ctx.container, Judge);
  const judgeOptions = parseKeyValues(o.judgeOpt, '--judge-opt');
  if (o.judge === 'llm' && judgeOptions.cache === undefined && o.out !== undefined)
    judgeOptions.cache = path.join(o.out, 'judge-cache.jsonl');
  const resolved = judges.resolve([o.judge, judgeOptions], '--judge');
  const judge: Judge =
    o.judge === 'llm' && judges.get('llm').source === '@quorum/eval'
      ? llmJudge(resolved.options as never, { log })
      : judges.create([o.judge, judgeOptions], '--judge');

  const policy = await loadPolicyWithTokenizer(o.policy);
  const { tokenizer, config, params } = policy;
  const rng = new Rng(o.seed);
  const promptRoom = config.contextLength - o.maxNewTokens;
  if (promptRoom < 16) {
    throw new ConfigError(
      `--max-new-tokens ${o.maxNewTokens} leaves ${promptRoom} prompt tokens in a context of ${config.contextLength}`,
      {
        location: { field: '--max-new-tokens' },
        hint: `use at most ${config.contextLength - 16}`,
      },
    );
  }
  /** Answers to `prompts`, batchSize at a time. */
  const answer = (prompts: readonly Prompt[], label: string): string[] => {
    const out: string[] = [];
    for (let at = 0; at < prompts.length; at += o.batchSize) {
      const chunk = prompts.slice(at, at + o.batchSize);
      const ids = chunk.map((p) => Array.from(encodePrompt(tokenizer, p, { maxLength: promptRoom })));
      const result: GenerateResult = generate(params, config, ids, {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        eosId: tokenizer.eosId,
        padId: tokenizer.padId,
        rng: o.temperature === 0 ? undefined : rng.fork(`${label}/${at}`),
      });
      for (const toks of result.tokens)
        out.push(tokenizer.decode(toks.filter((t) => t !== tokenizer.eosId)).trim());
      log(`generated ${Math.min(at + o.batchSize, prompts.length)}/${prompts.length} (${label})`);
    }
    return out;
  };
  const failures: { id: number; turn?: number; error: string }[] = [];
  const records: Record<string, unknown>[] = [];
  let summary: Record<string, unknown>;

  if (o.bench === 'alpaca-eval') {
    const data = await datasets.alpacaEval();
    const instructions = data.split('eval').slice(0, o.limit);
    const answers = answer(
      instructions.map((i) => data.prompt(i.id)),
      'alpaca-eval',
    );
    const outcomes: Outcome[] = [];
    for (const [i, inst] of instructions.entries()) {
      const reference = data.output(inst.id, REFERENCE_GENERATOR) ?? '';
      const record: Record<string, unknown> = {
        id: inst.id,
        instruction: inst.instruction,
        answer: answers[i],
      };
      try {
        const v = await judge.compare({
          instruction: inst.instruction,
          input: '',
          a: answers[i] as string,
          b: reference,
        });
        outcomes.push(outcomeOf(v));
        Object.assign(record, { winner: v.winner, ...(v.p === undefined ? {} : { p: v.p }) });
      } catch (error) {
        if (!isJudgeError(error)) throw error;
        failures.push({ id: inst.id, error: error.message });
        record.failed = error.message;
      }
      records.push(record);
      log(`judged ${i + 1}/${instructions.length}`);
    }
    if (outcomes.length === 0)
      throw new ConfigError('the judge graded no item', {
        hint: `first failure: ${failures[0]?.error ?? 'none'}`,
      });
    const w = winRate(outcomes);
    summary = { bench: o.bench, judge: o.judge, ...w, failed: failures.length };
    process.stdout.write(
      `AlpacaEval win rate vs ${REFERENCE_GENERATOR}: ${w.winRate.toFixed(1)} ± ${Number.isNaN(w.stderr) ? '–' : w.stderr.toFixed(1)} (n=${w.n}: ${w.wins} wins, ${w.ties} ties, ${w.losses} losses${failures.length > 0 ? `; ${failures.length} failed` : ''})\n`,
    );
  } else {
    if (judge.score === undefined) {
      throw new ConfigError(`judge "${o.judge}" cannot grade single answers`, {
        location: { field: '--judge' },
        hint: 'MT-Bench needs a judge with score(): llm or reward-model',
      });
    }
    const score = judge.score.bind(judge);
    const questions = (await datasets.mtBench()).questions.slice(0, o.limit);
    const first = answer(
      questions.map((q) => ({ instruction: q.turns[0] as string, input: '' })),
      'mt-bench/turn-1',
    );
    const second = answer(
      questions.map((q, i) =>
        conversationPrompt([
          { role: 'user', content: q.turns[0] as string },
          { role: 'assistant', content: first[i] as string },
          { role: 'user', content: (q.turns[1] ?? '') as string },
        ]),
      ),
      'mt-bench/turn-2',
    );
    const perTurn: number[][] = [[], []];
    for (const [i, q] of questions.entries()) {
      const scores: (number | undefined)[] = [];
      for (const turn of [0, 1]) {
        try {
          const s = await score({
            instruction: q.turns[turn] as string,
            answer: (turn === 0 ? first[i] : second[i]) as string,
            ...(turn === 1
              ? { history: [{ question: q.turns[0] as string, answer: first[i] as string }] }
              : {}),
            ...(q.reference === undefined ? {} : { references: q.reference.slice(0, turn + 1) }),
            category: q.category,
          });
          perTurn[turn]!.push(s);
          scores.push(s);
        } catch (error) {
          if (!isJudgeError(error)) throw error;
          failures.push({ id: q.id, turn: turn + 1, error: error.message });
          scores.push(undefined);
        }
      }
      records.push({ id: q.id, category: q.category, answers: [first[i], second[i]], scores });
      log(`judged ${i + 1}/${questions.length}`);
    }
    const all = [...perTurn[0]!, ...perTurn[1]!];
    if (all.length === 0)
      throw new ConfigError('the judge graded no item', {
        hint: `first failure: ${failures[0]?.error ?? 'none'}`,
      });
    const m = meanStderr(all, 'scores');
    const t = perTurn.map((s) => (s.length === 0 ? undefined : meanStderr(s, 'scores').mean));
    summary = {
      bench: o.bench,
      judge: o.judge,
      mean: m.mean,
      stderr: m.stderr,
      n: m.n,
      turn1: t[0],
      turn2: t[1],
      failed: failures.length,
    };
    process.stdout.write(
      `MT-Bench mean score: ${m.mean.toFixed(2)} ± ${Number.isNaN(m.stderr) ? '–' : m.stderr.toFixed(2)} (turn 1 ${t[0]?.toFixed(2) ?? '–'}, turn 2 ${t[1]?.toFixed(2) ?? '–'}; ${m.n} answers${failures.length > 0 ? `; ${failures.length} failed` : ''})\n`,
    );
  }
  if (o.out !== undefined) {
    mkdirSync(o.out, { recursive: true });
    await writeFileAtomic(
      path.join(o.out, 'answers.jsonl'),
      records.map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
    await writeFileAtomic(
      path.join(o.out, 'eval.json'),
      `${JSON.stringify({ ...summary, policy: o.policy, seed: o.seed, failures }, null, 2)}\n`,
    );
  }
  return summary;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'grade a policy on AlpacaEval (win rate vs text-davinci-003) or MT-Bench (1–10) with a judge',
    )
    .addOption(
      new Option('--bench <name>', 'benchmark').choices(['alpaca-eval', 'mt-bench']).makeOptionMandatory(),
    )
    .requiredOption('--policy <dir>', 'policy folder (written by `quorum sft` or `quorum ppo`)')
    .option('--judge <name>', 'judge: llm, reward-model, preference-table or a plugin’s', 'llm')
    .option(
      '--judge-opt <key=value>',
      'judge option (repeatable), e.g. baseUrl=…, model=…, timeoutMs=…',
      (v: string, p: string[] | undefined) => [...(p ?? []), v],
    )
    .option('--limit <n>', 'only the first n instructions / questions', positiveInt('--limit'))
    .option('--out <dir>', 'write answers.jsonl, eval.json and the judge cache here')
    .option('--resume', 'reuse the judge verdicts already in --out')
    .option('--overwrite', 'start over in a non-empty --out')
    .option('--seed <n>', 'generation seed', (v: string) => Number(v), 0)
    .option('--max-new-tokens <n>', 'answer length budget (tokens)', positiveInt('--max-new-tokens'), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', (v: string) => Number(v), 0)
    .option('--batch-size <n>', 'prompts generated together', positiveInt('--batch-size'), 8)
    .addHelpText(
      'after',
      `
The llm judge reads QUORUM_JUDGE_BASE_URL, QUORUM_JUDGE_MODEL and QUORUM_JUDGE_API_KEY (or --judge-opt
baseUrl=… model=… apiKey=…); it retries timeouts, 429 and 5xx with backoff, and caches every verdict in
OUT/judge-cache.jsonl, so a rerun with --resume asks nothing twice. The key is never printed or stored.

Examples:
  $ QUORUM_JUDGE_BASE_URL=https://api.openai.com/v1 QUORUM_JUDGE_MODEL=gpt-4-turbo QUORUM_JUDGE_API_KEY=… \\
      quorum eval --bench alpaca-eval --policy runs/sft --out runs/eval-alpaca
  $ quorum eval --bench mt-bench --policy runs/ppo --limit 10 --out runs/eval-mt
  $ quorum eval --bench alpaca-eval --policy runs/sft --judge reward-model --judge-opt model=runs/gold-rm`,
    )
    .action(async (opts: EvalCommandOptions, cmd: Command) => {
      await runEval(cmd.optsWithGlobals<GlobalOptions>(), opts);
    });
}
