/**
 * The `preference-table` judge: GPT-4's verdicts shipped with AlpacaEval (each model answer against
 * text-davinci-003's). It judges an answer found in the table against the reference answer, offline,
 * with no judge call — the gold verdict of Best-of-n over the shipped answer pool.
 */
import { DataError } from '@quorum/core';
import { type AlpacaEvalData, datasets, REFERENCE_GENERATOR } from '@quorum/data';
import type { CompareItem, Judge, Verdict } from './judge.js';

interface InstructionEntry {
  readonly id: number;
  readonly reference: string;
  /** answer text → generator and raw label (2 = model preferred, 1 = reference, 0 / 1.5 = draw). */
  readonly answers: Map<string, { generator: string; label: number }>;
}

const excerpt = (text: string, n = 60): string =>
  JSON.stringify(text.length > n ? `${text.slice(0, n)}…` : text);

/** Verdict of the model answer against the reference, from the model answer's side. */
function verdictOf(label: number): Verdict {
  if (label === 2) return { winner: 'a', p: 1 };
  if (label === 1) return { winner: 'b', p: 0 };
  return { winner: 'tie', p: 0.5 };
}

/** Builds the table judge over loaded AlpacaEval data (plain factory; no container needed). */
export function preferenceTableJudge(data: AlpacaEvalData): Judge {
  const byInstruction = new Map<string, InstructionEntry>();
  const entry = (instruction: string): InstructionEntry | undefined => {
    const cached = byInstruction.get(instruction);
    if (cached !== undefined) return cached;
    if (byInstruction.size === 0) {
      for (const inst of data.instructions) {
        const reference = data.output(inst.id, REFERENCE_GENERATOR);
        if (reference === undefined) continue;
        const answers = new Map<string, { generator: string; label: number }>();
        for (const c of data.candidates(inst.id)) {
          if (!answers.has(c.output)) answers.set(c.output, { generator: c.generator, label: c.label });
        }
        byInstruction.set(inst.instruction, { id: inst.id, reference, answers });
      }
    }
    return byInstruction.get(instruction);
  };
  return {
    name: 'preference-table',
    async compare(item: CompareItem): Promise<Verdict> {
      if ((item.input ?? '') !== '') {
        throw new DataError('the AlpacaEval preference table has no instruction with an input', {
          location: { field: 'input' },
          hint: 'pass the instruction text exactly as shipped, with input ""',
        });
      }
      const e = entry(item.instruction);
      if (e === undefined) {
        throw new DataError(
          `instruction ${excerpt(item.instruction)} is not in the AlpacaEval preference table`,
          {
            location: { field: 'instruction' },
            hint: 'the table judges only the shipped AlpacaEval instructions; use the reward-model or llm judge for others',
          },
        );
      }
      const aRef = item.a === e.reference;
      const bRef = item.b === e.reference;
      if (aRef && bRef) return { winner: 'tie', p: 0.5 };
      if (!aRef && !bRef) {
        throw new DataError(
          `instruction ${e.id}: neither answer is the ${REFERENCE_GENERATOR} reference; the table only judges an answer against the reference`,
          {
            location: { field: 'a' },
            hint: `compare each answer with data.output(${e.id}, "${REFERENCE_GENERATOR}") instead`,
          },
        );
      }
      const answer = aRef ? item.b : item.a;
      const found = e.answers.get(answer);
      if (found === undefined) {
        throw new DataError(
          `instruction ${e.id}: answer ${excerpt(answer)} is not in the AlpacaEval preference table (it holds only the shipped generators' answers)`,
          {
            location: { field: aRef ? 'b' : 'a' },
            hint: 'judge new answers with the reward-model or llm judge',
          },
        );
      }
      const v = verdictOf(found.label);
      // v is from the model answer's side; flip when the model answer is b.
      if (!aRef) return v;
      return { winner: v.winner === 'a' ? 'b' : v.winner === 'b' ? 'a' : 'tie', p: 1 - (v.p as number) };
    },
  };
}

/** The table judge over the shipped AlpacaEval data (loaded once per process on first use). */
export function shippedPreferenceTableJudge(): Judge {
  let judge: Promise<Judge> | undefined;
  const get = (): Promise<Judge> => {
    judge ??= datasets.alpacaEval().then(preferenceTableJudge);
    return judge;
  };
  return {
    name: 'preference-table',
    compare: async (item) => (await get()).compare(item),
  };
}
