/**
 * The contract every `Judge` keeps, on @quorum/testing's harness, plus a fake OpenAI-compatible server
 * for tests of LLM judges. A plugin's test file:
 *
 *   import { judgeContract } from '@quorum/eval/testing';
 *   judgeContract.run([{ name: 'my-judge', create: () => myJudge() }]);
 *
 * The cases compare real shipped AlpacaEval answers (a model answer and the text-davinci-003 reference),
 * so every judge — the offline preference table included — can answer them. Checks: the verdict is a, b
 * or tie; p is in [0, 1] when given and agrees with the winner; swapping a and b swaps the verdict (and
 * p → 1 − p); asking twice gives the same verdict; `score`, when present, is finite and repeatable.
 */
import { type AlpacaEvalData, datasets, REFERENCE_GENERATOR } from '@quorum/data';
import { type ContractSuite, defineContractSuite } from '@quorum/testing';
import { beforeAll, expect, it } from 'vitest';
import type { CompareItem, Judge } from '../judge.js';

export {
  defaultJudgeReply,
  type FakeLlmServer,
  type FakeReply,
  type RecordedRequest,
  startFakeLlmServer,
} from './fake-llm-server.js';

/** A few real comparisons: shipped model answers vs the reference, on eval-split instructions. */
export function contractItems(data: AlpacaEvalData, count = 4): CompareItem[] {
  const items: CompareItem[] = [];
  for (const inst of data.split('eval')) {
    const reference = data.output(inst.id, REFERENCE_GENERATOR);
    const cands = data.candidates(inst.id).filter((c) => c.output !== reference);
    if (reference === undefined || cands.length === 0) continue;
    // Alternate a winning and a losing answer, so both verdicts occur.
    const want = items.length % 2 === 0 ? 'win' : 'loss';
    const c = cands.find((x) => x.gold === want) ?? cands[0]!;
    items.push({ instruction: inst.instruction, input: '', a: c.output, b: reference });
    if (items.length === count) break;
  }
  return items;
}

export const judgeContract: ContractSuite<Judge> = defineContractSuite<Judge>('Judge', (ctx) => {
  let items: CompareItem[] = [];
  beforeAll(async () => {
    items = contractItems(await datasets.alpacaEval());
  });

  it('has a kebab-case name', async () => {
    const judge = await ctx.create();
    expect(judge.name).toMatch(/^[a-z0-9][a-z0-9-]*$/);
  });

  it('gives a verdict of a, b or tie, with p in [0, 1] agreeing with the winner', async () => {
    const judge = await ctx.create();
    for (const item of items) {
      const v = await judge.compare(item);
      expect(['a', 'b', 'tie']).toContain(v.winner);
      if (v.p !== undefined) {
        expect(v.p).toBeGreaterThanOrEqual(0);
        expect(v.p).toBeLessThanOrEqual(1);
        if (v.winner === 'a') expect(v.p).toBeGreaterThanOrEqual(0.5);
        if (v.winner === 'b') expect(v.p).toBeLessThanOrEqual(0.5);
      }
    }
  });

  it('answers consistently when a and b are swapped', async () => {
    const judge = await ctx.create();
    for (const item of items) {
      const ab = await judge.compare(item);
      const ba = await judge.compare({ ...item, a: item.b, b: item.a });
      const mirrored = ab.winner === 'a' ? 'b' : ab.winner === 'b' ? 'a' : 'tie';
      expect(ba.winner, `swapped verdict on "${item.instruction.slice(0, 40)}"`).toBe(mirrored);
      if (ab.p !== undefined && ba.p !== undefined) expect(ab.p + ba.p).toBeCloseTo(1, 5);
    }
  });

  it('gives the same verdict when asked twice', async () => {
    const judge = await ctx.create();
    const item = items[0] as CompareItem;
    expect(await judge.compare(item)).toEqual(await judge.compare(item));
  });

  it('scores an answer with a finite, repeatable number (when it can score)', async () => {
    const judge = await ctx.create();
    if (judge.score === undefined) return;
    const item = items[0] as CompareItem;
    const s = await judge.score({ instruction: item.instruction, input: '', answer: item.a });
    expect(Number.isFinite(s)).toBe(true);
    expect(await judge.score({ instruction: item.instruction, input: '', answer: item.a })).toBe(s);
    const turn2 = await judge.score({
      instruction: 'Now say it in one sentence.',
      answer: item.a.slice(0, 80),
      history: [{ question: item.instruction, answer: item.a }],
    });
    expect(Number.isFinite(turn2)).toBe(true);
  });
});
