#!/usr/bin/env node
/**
 * Builds the project vocabulary: the most frequent GPT-2 BPE (r50k) tokens of the shipped AlpacaEval
 * TRAIN split as models see it — formatPrompt(instruction) + answer, for every generator's answer —
 * plus the 256 byte tokens and pad/eos/unk/bos: 4,096 ids.
 * Rare tokens are spelled with kept ones (rare = split). Writes datasets/vocab/project-vocab.json.gz and
 * prints, for a few sizes, the share of tokens kept whole, the length ratio and the unk rate.
 *
 *   npx tsc -b tsconfig.json && node scripts/build-vocab.mjs [--size 4096]
 */
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { countTokens, datasetPath, datasets, formatPrompt, Vocab } from '../dist/index.js';

const sizeArg = process.argv.indexOf('--size');
const size = sizeArg >= 0 ? Number(process.argv[sizeArg + 1]) : 4096;

const ae = await datasets.alpacaEval();
const textsOf = (split) =>
  ae.split(split).flatMap((inst) => {
    const prompt = formatPrompt({ instruction: inst.instruction, input: '' });
    return ae.generators.flatMap((g) =>
      ae.output(inst.id, g) === undefined ? [] : [prompt + ae.output(inst.id, g)],
    );
  });

let start = performance.now();
const train = countTokens(textsOf('train'));
const trainSeconds = (performance.now() - start) / 1000;
const evalCounts = countTokens(textsOf('eval'));
const hh = await datasets.hhRlhf();
const hhCounts = countTokens(hh.flatMap((p) => [p.prompt.instruction, p.chosen, p.rejected]));
const total = train.reduce((a, b) => a + b, 0);
console.log(
  `train corpus: ${total} r50k tokens, ${train.filter((c) => c > 0).length} distinct ids (encoded in ${trainSeconds.toFixed(1)} s)`,
);

const pct = (x) => `${(100 * x).toFixed(2)}%`;
for (const k of [1024, 2048, 4096, 8192, 16384]) {
  const v = Vocab.fromCounts(train, k);
  const row = (name, counts) => {
    const m = v.measure(counts);
    return `${name} kept ${pct(m.coverage)} ×${m.lengthRatio.toFixed(3)} unk ${pct(m.unkRate)}`;
  };
  console.log(`K=${k}: ${row('train', train)} | ${row('eval', evalCounts)} | ${row('hh-rlhf', hhCounts)}`);
}

start = performance.now();
const vocab = Vocab.fromCounts(train, size);
const file = datasetPath('vocab/project-vocab.json.gz');
writeFileSync(file, gzipSync(`${JSON.stringify(vocab.toJSON())}\n`, { level: 9 }));
console.log(`wrote ${file}: ${vocab.size} ids, id ${vocab.id}`);
