/**
 * The `reward-model` judge: a "gold" reward model or ensemble grades answers (the synthetic-gold setup
 * of Gao et al. 2023 and Coste et al. 2024). `compare` ranks by the aggregate reward with
 * p = σ(r_a − r_b); `score` is the aggregate reward itself (unbounded, not 1–10).
 */
import type { AggregationRule } from '@quorum/aggregation';
import { conversationPrompt, type Prompt, type TextTokenizer, type Turn } from '@quorum/data';
import { type RewardEnsemble, type ScoreOptions, scoreAnswers, sigmoid } from '@quorum/ensemble';
import type { CompareItem, Judge, ScoreItem, Verdict } from './judge.js';

export interface RewardModelJudgeOptions {
  readonly ensemble: RewardEnsemble;
  /** The tokenizer the ensemble was trained with. */
  readonly tokenizer: TextTokenizer;
  /** Turns the members' rewards into one (e.g. `mean`, or `lcb` for a cautious gold). */
  readonly rule: AggregationRule;
  readonly scoring?: ScoreOptions;
}

/** The prompt a reward model sees for an item with earlier turns: the conversation so far. */
export function promptWithHistory(item: ScoreItem): Prompt {
  const history = item.history ?? [];
  if (history.length === 0) return { instruction: item.instruction, input: item.input ?? '' };
  const turns: Turn[] = [];
  for (const t of history)
    turns.push({ role: 'user', content: t.question }, { role: 'assistant', content: t.answer });
  const last = (item.input ?? '') === '' ? item.instruction : `${item.instruction}\n\n${item.input}`;
  turns.push({ role: 'user', content: last });
  return conversationPrompt(turns);
}

/** Builds the judge from a loaded ensemble (plain factory; the registry entry loads from a path). */
export function rewardModelJudge(options: RewardModelJudgeOptions): Judge {
  const rewards = (prompt: Prompt, answers: readonly string[]): number[] => {
    const perMember = scoreAnswers(
      options.ensemble,
      options.tokenizer,
      answers.map((answer) => ({ prompt, answer })),
      options.scoring,
    ); // [k][N]
    return options.rule.aggregateArrays(perMember).aggregate;
  };
  return {
    name: 'reward-model',
    async compare(item: CompareItem): Promise<Verdict> {
      const prompt = { instruction: item.instruction, input: item.input ?? '' };
      // Score in a canonical order so that compare(a, b) and compare(b, a) run the same batch.
      const swap = item.b < item.a;
      const [r0, r1] = rewards(prompt, swap ? [item.b, item.a] : [item.a, item.b]) as [number, number];
      const [ra, rb] = swap ? [r1, r0] : [r0, r1];
      return { winner: ra > rb ? 'a' : ra < rb ? 'b' : 'tie', p: sigmoid(ra - rb) };
    },
    async score(item: ScoreItem): Promise<number> {
      return rewards(promptWithHistory(item), [item.answer])[0] as number;
    },
  };
}
