// The Judge contract over the three built-ins, created through the registry as a user's config would,
// plus each built-in's own behaviour on the shipped data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aggregationRegistry } from '@quorum/aggregation';
import { gptPreset } from '@quorum/backbone';
import { collectRegistries, createQuorumContainer, Rng, requireRegistry } from '@quorum/core';
import { datasets, projectTokenizer, REFERENCE_GENERATOR } from '@quorum/data';
import { builtinArchitectureRegistry, saveEnsemble } from '@quorum/ensemble';
import { useTestBackend } from '@quorum/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { Judge } from './judge.js';
import { evalModule, judgeRegistry } from './module.js';
import { preferenceTableJudge } from './preference-table.js';
import { rewardModelJudge } from './reward-model-judge.js';
import { contractItems, type FakeLlmServer, judgeContract, startFakeLlmServer } from './testing/index.js';

useTestBackend('wasm');

let server: FakeLlmServer | undefined;
const tmp = mkdtempSync(path.join(tmpdir(), 'quorum-judges-'));
const rmDir = path.join(tmp, 'gold-rm');
let rmSaved: Promise<void> | undefined;

/** A tiny random reward ensemble (k = 2) saved as a folder, as `quorum train-rm` would write it. */
function savedRewardModel(): Promise<void> {
  rmSaved ??= (async () => {
    const tokenizer = projectTokenizer();
    const config = gptPreset('nano', {
      vocabSize: tokenizer.vocabSize,
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      contextLength: 64,
    });
    const ensemble = builtinArchitectureRegistry()
      .create('linear-heads')
      .build({ gptConfig: config, members: 2, rng: new Rng(5) });
    await saveEnsemble(rmDir, ensemble, {
      architectureSource: '@quorum/ensemble',
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
    });
    ensemble.dispose();
  })();
  return rmSaved;
}

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const registry = judgeRegistry();
judgeContract.run([
  { name: 'preference-table', create: () => registry.create('preference-table') },
  {
    name: 'reward-model',
    create: async () => {
      await savedRewardModel();
      return registry.create(['reward-model', { model: rmDir, rule: ['lcb', { beta: 0.5 }] }]);
    },
  },
  {
    name: 'llm',
    create: async () => {
      server ??= await startFakeLlmServer();
      return registry.create(['llm', { baseUrl: server.url, model: 'fake', apiKey: 'k', backoffMs: 1 }]);
    },
  },
]);

describe('preference-table judge', () => {
  it('returns GPT-4’s shipped verdicts against the reference, from either side', async () => {
    const data = await datasets.alpacaEval();
    const judge = preferenceTableJudge(data);
    let checked = 0;
    for (const inst of data.split('eval').slice(0, 10)) {
      const reference = data.output(inst.id, REFERENCE_GENERATOR)!;
      for (const c of data.candidates(inst.id)) {
        if (c.output === reference) continue;
        const v = await judge.compare({ instruction: inst.instruction, a: c.output, b: reference });
        expect(v.winner).toBe(c.gold === 'win' ? 'a' : c.gold === 'loss' ? 'b' : 'tie');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('names the instruction id and the answer when an answer is not in the table', async () => {
    const data = await datasets.alpacaEval();
    const judge = preferenceTableJudge(data);
    const inst = data.split('eval')[0]!;
    const reference = data.output(inst.id, REFERENCE_GENERATOR)!;
    await expect(
      judge.compare({ instruction: inst.instruction, a: 'A brand new answer.', b: reference }),
    ).rejects.toThrow(
      new RegExp(
        `instruction ${inst.id}: answer "A brand new answer\\." is not in the AlpacaEval preference table`,
      ),
    );
    const [c1, c2] = data.candidates(inst.id);
    await expect(
      judge.compare({ instruction: inst.instruction, a: c1!.output, b: c2!.output }),
    ).rejects.toThrow(/neither answer is the text_davinci_003 reference/);
    await expect(
      judge.compare({ instruction: 'Not an AlpacaEval instruction', a: 'x', b: 'y' }),
    ).rejects.toThrow(/is not in the AlpacaEval preference table/);
  });
});

describe('reward-model judge', () => {
  it('compares by the aggregate reward (p = σ(r_a − r_b)) and scores with it', async () => {
    await savedRewardModel();
    const tokenizer = projectTokenizer();
    const config = gptPreset('nano', {
      vocabSize: tokenizer.vocabSize,
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      contextLength: 64,
    });
    const ensemble = builtinArchitectureRegistry()
      .create('independent')
      .build({ gptConfig: config, members: 3, rng: new Rng(9) });
    const judge = rewardModelJudge({ ensemble, tokenizer, rule: aggregationRegistry().create('mean') });
    const [item] = contractItems(await datasets.alpacaEval(), 1);
    const ra = await judge.score!({ instruction: item!.instruction, answer: item!.a });
    const rb = await judge.score!({ instruction: item!.instruction, answer: item!.b });
    const v = await judge.compare(item!);
    expect(v.p).toBeCloseTo(1 / (1 + Math.exp(-(ra - rb))), 4);
    expect(v.winner).toBe(ra > rb ? 'a' : 'b');
    ensemble.dispose();
  });
});

describe('evalModule', () => {
  it('declares the judge point and contributes the three built-ins', () => {
    const registries = collectRegistries(createQuorumContainer([evalModule()]));
    expect(requireRegistry(registries, Judge).names()).toEqual(['preference-table', 'reward-model', 'llm']);
    expect(() => registry.create(['llm', { baseUrl: 'http://x', model: 'm', timeout: 5 }])).toThrow(
      /unknown option "timeout"/,
    );
    expect(() => registry.create('gpt4')).toThrow(/unknown judge "gpt4"/);
  });
});
