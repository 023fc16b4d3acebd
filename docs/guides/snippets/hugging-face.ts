// hf-ensemble.ts — start a reward ensemble from a Hugging Face model folder, train it, export it back.
import { namedParameters } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { datasets, loadTokenizer } from '@quorum/data';
import {
  builtinArchitectureRegistry,
  resolveRewardTrainConfig,
  saveEnsemble,
  trainRewardEnsemble,
} from '@quorum/ensemble';
import { exportRewardModel, loadHfModel } from '@quorum/hf';

await initCompute({ registry: builtinBackendRegistry() });

// 1. A folder on disk in the Hugging Face layout (config.json, model.safetensors, tokenizer.json, …).
//    Nothing is downloaded: `huggingface-cli download ORG/NAME --local-dir DIR` first if you need one.
const dir = process.argv[2] ?? 'packages/hf/models/stories260K';
const model = await loadHfModel(dir); // config + weights, checked against config.json
const tokenizer = await loadTokenizer(dir); // tokenizer.json + tokenizer_config.json (chat template if any)

// 2. k = 3 members sharing the pretrained transformer, one linear head each.
const ensemble = builtinArchitectureRegistry()
  .create('linear-heads')
  .build({
    gptConfig: model.config,
    members: 3,
    rng: new Rng(0),
    initBackbone: namedParameters(model.params),
  });

// 3. Bradley-Terry training on the shipped AlpacaEval preference pairs.
const pairs = (await datasets.alpacaEval()).pairs({ split: 'train' }).slice(0, 256);
const result = await trainRewardEnsemble({
  ensemble,
  tokenizer,
  pairs,
  config: resolveRewardTrainConfig({ batchSize: 8, maxSteps: 16, maxLength: 256, checkpointEvery: 0 }),
});
console.log(`trained on ${result.pairs.used} pairs (${result.pairs.truncated} truncated)`);

// 4. Save a Quorum reward-model folder, then export it as LlamaForSequenceClassification (num_labels = 3).
//    Hugging Face's score layer has no bias; `headBias: 'config'` keeps the heads' (tiny) trained bias in
//    config.json as `quorum_score_bias`, so loadHfRewardModel gives back exactly Quorum's scores.
await saveEnsemble('runs/hf-rm', ensemble, { architectureSource: '@quorum/ensemble', tokenizer });
await exportRewardModel('runs/hf-rm', 'runs/hf-rm-export', { overwrite: true, headBias: 'config' });
ensemble.dispose();
