// score.ts — score answers with a trained reward ensemble from your own project (Node ≥ 20, ESM).
import { aggregationRegistry } from '@quorum/aggregation';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { builtinArchitectureRegistry, loadEnsemble, scoreAnswers } from '@quorum/ensemble';

// 1. Pick where tensors are computed (wasm by default; QUORUM_BACKEND=cpu also works).
const backend = await initCompute({ registry: builtinBackendRegistry() });
console.log(`computing on ${backend.name}: ${backend.reason}`);

// 2. Load a reward-model folder written by `quorum train-rm --out runs/rm`.
const dir = process.argv[2] ?? 'runs/rm';
// The folder's tokenizer comes with it (Quorum's vocab.json or a Hugging Face tokenizer.json).
const { ensemble, tokenizer } = await loadEnsemble(dir, builtinArchitectureRegistry());

// 3. Per-member rewards [k][N], then one reward per answer with a rule: lcb = mean − β·std.
const rows = [
  { prompt: { instruction: 'Name a primary colour.', input: '' }, answer: 'Red is a primary colour.' },
  { prompt: { instruction: 'Name a primary colour.', input: '' }, answer: 'Grass.' },
];
const rewards = scoreAnswers(ensemble, tokenizer, rows);
const rule = aggregationRegistry().create(['lcb', { beta: 0.5 }]);
const { aggregate, std } = rule.aggregateArrays(rewards);
rows.forEach((row, i) => {
  console.log(`${aggregate[i]?.toFixed(3)} ± ${std[i]?.toFixed(3)}  ${row.answer}`);
});
ensemble.dispose();
