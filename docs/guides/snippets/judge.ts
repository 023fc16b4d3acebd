// shorter-wins: a judge that prefers the shorter answer (a toy that shows the interface).
import { defineStrategy, strategyModule } from '@quorum/core';
import { type CompareItem, Judge, type ScoreItem, type Verdict } from '@quorum/eval';
import { z } from 'zod';

const options = z
  .object({ temperature: z.number().positive().default(50).describe('characters per unit of log-odds') })
  .strict();

export function shorterWins({ temperature }: z.output<typeof options>): Judge {
  return {
    name: 'shorter-wins',
    // Called to judge two answers to one instruction. Swapping a and b must swap the verdict (p → 1 − p).
    compare: async (item: CompareItem): Promise<Verdict> => {
      const d = item.b.length - item.a.length; // > 0 when a is shorter
      const p = 1 / (1 + Math.exp(-d / temperature)); // probability that a is better
      return { winner: d > 0 ? 'a' : d < 0 ? 'b' : 'tie', p };
    },
    // Called to grade one answer (higher is better). Optional.
    score: async (item: ScoreItem): Promise<number> => -item.answer.length,
  };
}

export const shorterWinsStrategy = defineStrategy({
  name: 'shorter-wins',
  description: 'prefers the shorter answer (a toy judge)',
  source: 'shorter-wins',
  options,
  create: (o) => shorterWins(o),
});

export default strategyModule({
  strategies: [{ point: Judge as never, definitions: [shorterWinsStrategy] as never }],
});
