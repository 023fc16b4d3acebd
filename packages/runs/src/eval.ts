/**
 * The paper's two benchmarks for any policy (`quorum eval`): the policy's answers (seeded, greedy by
 * default) to the shipped AlpacaEval eval-split instructions or the MT-Bench questions (both turns; the
 * second conditioned on the first answer), graded by a judge: pairwise against the shipped
 * text-davinci-003 reference for AlpacaEval, single-answer 1–10 for MT-Bench. Items the judge could not
 * grade (code E_JUDGE, e.g. an endpoint that kept failing) are recorded as failed and left out.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { disposeGpt } from '@quorum/backbone';
import { ConfigError, writeFileAtomic } from '@quorum/core';
import { conversationPrompt, datasets, REFERENCE_GENERATOR } from '@quorum/data';
import {
  isJudgeError,
  type Judge,
  meanStderr,
  type Outcome,
  outcomeOf,
  type WinRate,
  winRate,
} from '@quorum/eval';
import { type AnswerOptions, answerPrompts } from './answer.js';
import { loadPolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';

export type Bench = 'alpaca-eval' | 'mt-bench';

export interface EvalRunOptions {
  readonly bench: Bench;
  /** The policy folder to grade. */
  readonly policy: string;
  /** The judge, created from the registry (its name is recorded). */
  readonly judge: Judge;
  /** Only the first n instructions / questions. */
  readonly limit?: number | undefined;
  /** Generation: answer length, temperature (0 = greedy), prompts per batch, seed. */
  readonly generation: {
    readonly maxNewTokens: number;
    readonly temperature: number;
    readonly batchSize: number;
    readonly seed: number;
  };
  /** Writes answers.jsonl and eval.json here when given. */
  readonly out?: string | undefined;
}

export interface EvalFailure {
  readonly id: number;
  readonly turn?: number;
  readonly error: string;
}

export type EvalSummary =
  | ({ readonly bench: 'alpaca-eval'; readonly judge: string; readonly failed: number } & WinRate)
  | {
      readonly bench: 'mt-bench';
      readonly judge: string;
      readonly mean: number;
      readonly stderr: number;
      readonly n: number;
      readonly turn1: number | undefined;
      readonly turn2: number | undefined;
      readonly failed: number;
    };

export interface EvalRunResult {
  readonly summary: EvalSummary;
  /** One per instruction / question: the answers and the verdicts or scores. */
  readonly records: readonly Record<string, unknown>[];
  readonly failures: readonly EvalFailure[];
}

/** Answers and grades; see this file's header. */
export async function runEval(
  options: EvalRunOptions,
  progress: RunProgress = silentProgress,
): Promise<EvalRunResult> {
  const { judge, generation } = options;
  const policy = await loadPolicyWithTokenizer(options.policy);
  try {
    const answerOptions = (label: string): AnswerOptions => ({ ...generation, label, trim: true });
    const failures: EvalFailure[] = [];
    const records: Record<string, unknown>[] = [];
    let summary: EvalSummary;
    if (options.bench === 'alpaca-eval') {
      const data = await datasets.alpacaEval();
      const instructions = data.split('eval').slice(0, options.limit);
      const answers = answerPrompts(
        policy,
        instructions.map((i) => data.prompt(i.id)),
        answerOptions('alpaca-eval'),
        progress,
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
        progress.update(i + 1, instructions.length, 'judged');
      }
      if (outcomes.length === 0) throw nothingGraded(failures);
      summary = { bench: 'alpaca-eval', judge: judge.name, ...winRate(outcomes), failed: failures.length };
    } else {
      if (judge.score === undefined) {
        throw new ConfigError(`judge "${judge.name}" cannot grade single answers`, {
          location: { field: '--judge' },
          hint: 'MT-Bench needs a judge with score(): llm or reward-model',
        });
      }
      const score = judge.score.bind(judge);
      const questions = (await datasets.mtBench()).questions.slice(0, options.limit);
      const first = answerPrompts(
        policy,
        questions.map((q) => ({ instruction: q.turns[0] as string, input: '' })),
        answerOptions('mt-bench/turn-1'),
        progress,
      );
      const second = answerPrompts(
        policy,
        questions.map((q, i) =>
          conversationPrompt([
            { role: 'user', content: q.turns[0] as string },
            { role: 'assistant', content: first[i] as string },
            { role: 'user', content: (q.turns[1] ?? '') as string },
          ]),
        ),
        answerOptions('mt-bench/turn-2'),
        progress,
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
        progress.update(i + 1, questions.length, 'judged');
      }
      const all = [...perTurn[0]!, ...perTurn[1]!];
      if (all.length === 0) throw nothingGraded(failures);
      const m = meanStderr(all, 'scores');
      const t = perTurn.map((s) => (s.length === 0 ? undefined : meanStderr(s, 'scores').mean));
      summary = {
        bench: 'mt-bench',
        judge: judge.name,
        mean: m.mean,
        stderr: m.stderr,
        n: m.n,
        turn1: t[0],
        turn2: t[1],
        failed: failures.length,
      };
    }
    if (options.out !== undefined) {
      mkdirSync(options.out, { recursive: true });
      await writeFileAtomic(
        path.join(options.out, 'answers.jsonl'),
        records.map((r) => JSON.stringify(r)).join('\n') + '\n',
      );
      await writeFileAtomic(
        path.join(options.out, 'eval.json'),
        `${JSON.stringify({ ...summary, policy: options.policy, seed: generation.seed, failures }, null, 2)}\n`,
      );
    }
    return { summary, records, failures };
  } finally {
    disposeGpt(policy.params);
  }
}

function nothingGraded(failures: readonly EvalFailure[]): ConfigError {
  return new ConfigError('the judge graded no item', {
    hint: `first failure: ${failures[0]?.error ?? 'none'}`,
  });
}

/** The line `quorum eval` prints. */
export function formatEvalSummary(s: EvalSummary): string {
  if (s.bench === 'alpaca-eval') {
    return `AlpacaEval win rate vs ${REFERENCE_GENERATOR}: ${s.winRate.toFixed(1)} ± ${Number.isNaN(s.stderr) ? '–' : s.stderr.toFixed(1)} (n=${s.n}: ${s.wins} wins, ${s.ties} ties, ${s.losses} losses${s.failed > 0 ? `; ${s.failed} failed` : ''})`;
  }
  return `MT-Bench mean score: ${s.mean.toFixed(2)} ± ${Number.isNaN(s.stderr) ? '–' : s.stderr.toFixed(2)} (turn 1 ${s.turn1?.toFixed(2) ?? '–'}, turn 2 ${s.turn2?.toFixed(2) ?? '–'}; ${s.n} answers${s.failed > 0 ? `; ${s.failed} failed` : ''})`;
}
