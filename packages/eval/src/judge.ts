/**
 * The `Judge` extension point: who decides which of two answers is better (AlpacaEval style) or how
 * good one answer is on a 1–10 scale (MT-Bench style). Owned by @quorum/eval; built-ins are
 * `preference-table`, `reward-model` and `llm`; a plugin contributes more through the registry.
 */
import { defineExtensionPoint, QuorumError } from '@quorum/core';

/** Two answers to one instruction. */
export interface CompareItem {
  readonly instruction: string;
  /** Extra input of the instruction (AlpacaEval rows have none); default ''. */
  readonly input?: string;
  readonly a: string;
  readonly b: string;
}

/** A pairwise verdict. */
export interface Verdict {
  readonly winner: 'a' | 'b' | 'tie';
  /** Probability that `a` is the better answer, in [0, 1], when the judge knows it. */
  readonly p?: number;
}

/** One earlier turn of a conversation (MT-Bench turn 2 is judged with turn 1 in view). */
export interface PriorTurn {
  readonly question: string;
  readonly answer: string;
}

/** One answer to grade. */
export interface ScoreItem {
  readonly instruction: string;
  readonly input?: string;
  readonly answer: string;
  /** Earlier turns, oldest first; the answer graded is the reply to `instruction` after them. */
  readonly history?: readonly PriorTurn[];
  /** Reference answers, one per turn so far (MT-Bench math, reasoning and coding questions). */
  readonly references?: readonly string[];
  /** MT-Bench category, e.g. `math`; picks the judge prompt with a reference where there is one. */
  readonly category?: string;
}

/** A judge, as created by a registry entry from its resolved options. */
export interface Judge {
  /** The registry name, e.g. `llm`. */
  readonly name: string;
  /**
   * Called to judge two answers to one instruction. Swapping `a` and `b` swaps the winner (and turns
   * `p` into `1 − p`); the contract suite (`@quorum/eval/testing`) checks it.
   */
  compare(item: CompareItem): Promise<Verdict>;
  /** Called to grade one answer (higher is better; the `llm` judge answers 1–10). Optional. */
  score?(item: ScoreItem): Promise<number>;
}

/**
 * What a caller may hand a judge besides its options: `registry.create(spec, path, { log })`. Judges
 * that have nothing to report ignore it.
 */
export interface JudgeContext {
  /** Called with a line about the judge's progress or trouble (the `llm` judge: each retry; never a key). */
  readonly log?: (message: string) => void;
}

export const Judge = defineExtensionPoint<Judge, JudgeContext>(
  'Judge',
  'judge',
  'who decides which of two answers is better, or grades one (preference table, gold reward model, LLM endpoint, …)',
);

/** Error code of a judge that could not give a verdict (endpoint failures, unparsable replies). */
export const JUDGE_ERROR = 'E_JUDGE';

/** A judge could not give a verdict. `code` is `E_JUDGE`; callers may record the item as failed. */
export function judgeError(message: string, hint: string, cause?: unknown): QuorumError {
  return new QuorumError(message, { code: JUDGE_ERROR, hint, ...(cause === undefined ? {} : { cause }) });
}

/** True for errors a judge throws when it could not judge one item (the run may go on without it). */
export function isJudgeError(error: unknown): error is QuorumError {
  return error instanceof QuorumError && error.code === JUDGE_ERROR;
}

/** The verdict seen from the other side: swaps the winner and turns p into 1 − p. */
export function flipVerdict(v: Verdict): Verdict {
  const winner = v.winner === 'a' ? 'b' : v.winner === 'b' ? 'a' : 'tie';
  return v.p === undefined ? { winner } : { winner, p: 1 - v.p };
}
