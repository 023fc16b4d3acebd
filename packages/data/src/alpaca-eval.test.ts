import { beforeAll, describe, expect, it } from 'vitest';
import { type AlpacaEvalData, alpacaEval, REFERENCE_GENERATOR } from './alpaca-eval.js';
import { balanceLength, longerWins } from './length.js';
import { mtBench } from './mt-bench.js';

let ae: AlpacaEvalData;
beforeAll(async () => {
  ae = await alpacaEval();
});

describe('datasets.alpacaEval (shipped data)', () => {
  it('has 805 instructions split 644 / 161, 52 generators, and is cached per process', async () => {
    expect(ae.instructions).toHaveLength(805);
    expect(ae.split('train')).toHaveLength(644);
    expect(ae.split('eval')).toHaveLength(161);
    expect(ae.generators).toHaveLength(52);
    expect(ae.generators).toContain(REFERENCE_GENERATOR);
    expect(await alpacaEval()).toBe(ae);
  });

  it('never lets an eval instruction into train pairs or SFT rows', () => {
    const evalIds = new Set(ae.split('eval').map((i) => i.id));
    const evalTexts = new Set(ae.split('eval').map((i) => i.instruction));
    const train = ae.pairs({ split: 'train', source: 'both', ties: 'keep' });
    for (const p of train) {
      expect(evalIds.has(p.meta!.instructionId!)).toBe(false);
      expect(evalTexts.has(p.prompt.instruction)).toBe(false);
    }
    for (const s of ae.sftExamples()) expect(evalIds.has(s.meta!.instructionId!)).toBe(false);
    const evalPairs = ae.pairs({ split: 'eval' });
    expect(evalPairs.every((p) => evalIds.has(p.meta!.instructionId!))).toBe(true);
  });

  it('reference pairs follow GPT-4: the longer answer wins ~83%', () => {
    const pairs = ae.pairs();
    expect(pairs).toHaveLength(32653);
    const p = pairs.find((x) => x.meta?.chosenGenerator !== REFERENCE_GENERATOR)!;
    expect(p.rejected).toBe(ae.output(p.meta!.instructionId!, REFERENCE_GENERATOR));
    expect(p.chosen).toBe(ae.output(p.meta!.instructionId!, p.meta!.chosenGenerator!));
    expect(longerWins(pairs).rate).toBeGreaterThan(0.82);
    expect(longerWins(pairs).rate).toBeLessThan(0.85);
    const withTies = ae.pairs({ ties: 'keep' });
    expect(withTies.length - pairs.length).toBe(withTies.filter((x) => x.tie).length);
  });

  it('length balancing keeps the total weight and is seeded', () => {
    const raw = ae.pairs();
    const weighted = balanceLength(raw, { method: 'weights' });
    const total = (ps: typeof raw): number => ps.reduce((s, x) => s + (x.weight ?? 1), 0);
    expect(total(weighted)).toBeCloseTo(total(raw), 6);
    expect(ae.pairs({ balance: 'sample', seed: 3 }).map((x) => x.id)).toEqual(
      ae.pairs({ balance: 'sample', seed: 3 }).map((x) => x.id),
    );
  });

  it('derived pairs: a model answer that beat the reference over one that lost, each answer used once', () => {
    const derived = ae.pairs({ source: 'derived' });
    expect(derived).toHaveLength(6156);
    const byId = new Map(ae.instructions.map((i) => [i.id, ae.candidates(i.id)]));
    const used = new Set<string>();
    for (const p of derived) {
      const cands = byId.get(p.meta!.instructionId!)!;
      expect(cands.find((c) => c.generator === p.meta!.chosenGenerator)!.gold).toBe('win');
      expect(cands.find((c) => c.generator === p.meta!.rejectedGenerator)!.gold).toBe('loss');
      for (const g of [p.meta!.chosenGenerator, p.meta!.rejectedGenerator]) {
        const key = `${p.meta!.instructionId}/${g}`;
        expect(used.has(key)).toBe(false);
        used.add(key);
      }
    }
    expect(ae.pairs({ source: 'derived', seed: 1 }).map((p) => p.id)).not.toEqual(derived.map((p) => p.id));
    const four = ae.pairs({ source: 'derived', derivedPerInstruction: 4 });
    expect(new Set(four.map((p) => p.id)).size).toBe(four.length);
    expect(four.length).toBeLessThanOrEqual(4 * 644);
  });

  it('reports pairs and longer-wins rates per option; balancing brings every rate to 0.5', () => {
    const report = ae.pairReport('train');
    expect(report).toHaveLength(9);
    for (const row of report) {
      if (row.balance === 'none') expect(row.longerWinsRate).toBeGreaterThan(0.7);
      else expect(Math.abs(row.longerWinsRate - 0.5)).toBeLessThan(0.02);
    }
    expect(report.find((r) => r.source === 'both' && r.balance === 'none')?.pairs).toBe(32653 + 6156);
  });

  it('rejects unknown pair options by name', () => {
    expect(() => ae.pairs({ split: 'test' as never })).toThrow('alpacaEval.pairs.split');
    expect(() => ae.pairs({ lengthBalance: true } as never)).toThrow('unknown option "lengthBalance"');
  });

  it('gives each eval instruction a candidate pool with GPT-4 gold labels', () => {
    const pools = ae.candidatePools();
    expect(pools).toHaveLength(161);
    const sizes = pools.map((p) => p.candidates.length);
    expect(Math.max(...sizes)).toBe(51);
    expect(Math.min(...sizes)).toBeGreaterThan(40);
    const gold = pools.flatMap((p) => p.candidates.map((c) => c.gold));
    expect(new Set(gold)).toEqual(new Set(['win', 'loss', 'draw']));
    expect(gold.filter((g) => g === 'win').length / gold.length).toBeGreaterThan(0.7);
    expect(pools[0]!.candidates.some((c) => c.generator === REFERENCE_GENERATOR)).toBe(false);
  });

  it('SFT rows are train answers that beat the reference', () => {
    const rows = ae.sftExamples();
    expect(rows.length).toBe(25737);
    expect(ae.sftExamples({ answers: 'reference' })).toHaveLength(644);
  });
});

describe('datasets.mtBench (shipped data)', () => {
  it('has 80 two-turn questions, reference answers and 8 judge prompts', async () => {
    const mt = await mtBench();
    expect(mt.questions).toHaveLength(80);
    expect(mt.questions.every((q) => q.turns.length === 2)).toBe(true);
    expect(mt.questions.filter((q) => q.category === 'math').every((q) => q.reference?.length === 2)).toBe(
      true,
    );
    expect(mt.judgePrompts.map((j) => j.name)).toContain('pair-v2');
    expect(mt.judgePrompts).toHaveLength(8);
  });
});
