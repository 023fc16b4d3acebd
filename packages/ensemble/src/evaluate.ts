/**
 * Scoring text with an ensemble: per-member rewards for answers, in bounded-memory chunks, and the
 * reward-model metrics on a set of preference pairs.
 */
import type { PreferencePair, Prompt, TextTokenizer } from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import type { RewardEnsemble } from './architecture.js';
import { encodeAnswer, tokenBatch } from './batches.js';
import { type PairScores, type RewardMetrics, rewardMetrics } from './metrics.js';

export interface ScoreOptions {
  /** Sequences per forward pass (memory is bounded by this). */
  readonly batchSize?: number;
  readonly maxLength?: number;
}

/**
 * Per-member rewards [k][N] for N (prompt, answer) rows, computed batchSize rows at a time. Rows are
 * sorted by length inside the call so padding stays small; the output is in input order.
 */
export function scoreAnswers(
  ensemble: RewardEnsemble,
  tokenizer: TextTokenizer,
  rows: readonly { readonly prompt: Prompt; readonly answer: string }[],
  options: ScoreOptions = {},
): number[][] {
  const batchSize = options.batchSize ?? 32;
  const maxLength = options.maxLength ?? ensemble.gptConfig.contextLength;
  const seqs = rows.map((r) =>
    encodeAnswer(tokenizer, r.prompt, r.answer, Math.min(maxLength, ensemble.gptConfig.contextLength)),
  );
  return scoreSequences(ensemble, seqs, tokenizer.padId, batchSize);
}

/** Per-member rewards [k][N] of already-encoded sequences. */
export function scoreSequences(
  ensemble: RewardEnsemble,
  seqs: readonly Int32Array[],
  padId: number,
  batchSize = 32,
): number[][] {
  const k = ensemble.members;
  const out = Array.from({ length: k }, () => new Array<number>(seqs.length).fill(0));
  const order = seqs
    .map((s, i) => [s.length, i] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, i]) => i);
  for (let at = 0; at < order.length; at += batchSize) {
    const idx = order.slice(at, at + batchSize);
    const batch = tokenBatch(
      idx.map((i) => seqs[i] as Int32Array),
      padId,
    );
    const r = ensemble.score(batch); // [k, b]
    const values = r.dataSync();
    tf.dispose([r, batch.ids, batch.mask]);
    for (let m = 0; m < k; m++)
      for (let j = 0; j < idx.length; j++)
        (out[m] as number[])[idx[j] as number] = values[m * idx.length + j] as number;
  }
  return out;
}

export interface EvaluateOptions extends ScoreOptions {
  /** Aggregates per-member rewards [k][N] into one reward per answer (default: the mean). */
  readonly aggregate?: (rewards: number[][]) => number[];
}

export function meanOverMembers(rewards: number[][]): number[] {
  const k = rewards.length;
  const n = rewards[0]?.length ?? 0;
  const out = new Array<number>(n).fill(0);
  for (const row of rewards) for (let j = 0; j < n; j++) (out[j] as number) += (row[j] as number) / k;
  return out;
}

/** Scores both answers of every (non-tie) pair and computes accuracy, ECE, diversity and length metrics. */
export function evaluatePairs(
  ensemble: RewardEnsemble,
  tokenizer: TextTokenizer,
  pairs: readonly PreferencePair[],
  options: EvaluateOptions = {},
): RewardMetrics & { scores: PairScores } {
  const usable = pairs.filter((p) => p.tie !== true);
  const rows = [
    ...usable.map((p) => ({ prompt: p.prompt, answer: p.chosen })),
    ...usable.map((p) => ({ prompt: p.prompt, answer: p.rejected })),
  ];
  const rewards = scoreAnswers(ensemble, tokenizer, rows, options);
  const aggregate = (options.aggregate ?? meanOverMembers)(rewards);
  const P = usable.length;
  const len = rows.map((r) => tokenizer.encode(r.answer).length);
  const scores: PairScores = {
    chosen: rewards.map((r) => r.slice(0, P)),
    rejected: rewards.map((r) => r.slice(P)),
    chosenAggregate: aggregate.slice(0, P),
    rejectedAggregate: aggregate.slice(P),
    chosenLength: len.slice(0, P),
    rejectedLength: len.slice(P),
  };
  return { ...rewardMetrics(scores), scores };
}
