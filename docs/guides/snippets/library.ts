// pipeline.ts — train a reward ensemble from a policy folder, then run Best-of-n with it, from a script.
import { aggregationRegistry } from '@quorum/aggregation';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import {
  loadPairs,
  loadPools,
  type RunProgress,
  renderOfflineTable,
  resolveArchitecture,
  runBestOfN,
  runRewardTraining,
} from '@quorum/runs';

await initCompute({ registry: builtinBackendRegistry() });
const progress: RunProgress = {
  update: (done, total, detail) => process.stderr.write(`\r${done}/${total} ${detail ?? ''}`),
  log: (message) => process.stderr.write(`\n${message}\n`),
};

// 1. Resolve the strategies first: a bad name or option fails here, before anything trains.
const architectures = builtinArchitectureRegistry(); // add a plugin's with .register(definition)
const architecture = resolveArchitecture(architectures, ['lora', { rank: 4 }]);
const rules = aggregationRegistry();
const compared = [
  { label: 'mean', rule: rules.create('mean') },
  { label: 'lcb', rule: rules.create(['lcb', { beta: 0.5 }]) },
];

// 2. Train k = 3 reward models from a policy folder (`quorum sft --out runs/sft`) on the shipped pairs.
const pairs = await loadPairs({ data: 'alpaca-eval', trainLimit: 512, evalLimit: 256, seed: 0 });
const trained = await runRewardTraining(
  {
    architecture,
    members: 3,
    size: 'nano',
    contextLength: 128,
    init: 'runs/sft',
    train: pairs.train,
    eval: pairs.eval,
    dataDescription: pairs.description,
    config: { batchSize: 16, maxSteps: 24, seed: 0 },
    out: 'runs/rm-lora',
    resume: false,
  },
  progress,
);
console.log(`accuracy ${trained.metrics?.accuracy.toFixed(3)}, ${trained.params.total} parameters`);

// 3. Best-of-n over the shipped answer pools, judged by GPT-4's shipped verdicts.
const bon = await runBestOfN(
  {
    mode: 'offline',
    reward: 'runs/rm-lora',
    architectures,
    pools: await loadPools('alpaca-eval', 'eval', 64),
    poolSource: 'alpaca-eval:eval',
    rules: compared,
    ns: [1, 2, 4, 8, 16, 32],
    batchSize: 32,
    out: 'runs/bon.json',
  },
  progress,
);
if (bon.gold) console.log(renderOfflineTable(bon.report));
