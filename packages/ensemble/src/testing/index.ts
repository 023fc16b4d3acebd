/**
 * The contract every `EnsembleArchitecture` keeps, on @quorum/testing's harness. A plugin's test file:
 *
 *   import { ensembleArchitectureContract } from '@quorum/ensemble/testing';
 *   ensembleArchitectureContract.run([{ name: 'warm', create: () => warmArchitecture.create({}) }]);
 *
 * Each case builds a tiny ensemble (k = 2 unless the architecture allows only 1) and checks: rewards are
 * [k, B] and finite; scoring leaks no tensor; every variable has a unique name in exactly one file;
 * parameter counts add up (and match `expectedParamCounts` when given); one training step per phase
 * changes the phase's variables and keeps the loss finite; a save/load round trip scores identically.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type GptConfig, gptPreset, paramCount } from '@quorum/backbone';
import {
  activeBackend,
  builtinBackendRegistry,
  defineStrategy,
  initCompute,
  Rng,
  StrategyRegistry,
} from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { type ContractSuite, defineContractSuite, expectNoTensorLeaks } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { EnsembleArchitecture, type TrainableEnsemble } from '../architecture.js';
import { tokenBatch } from '../batches.js';
import { loadEnsemble, saveEnsemble } from '../checkpoint.js';
import { scoreSequences } from '../evaluate.js';
import { builtinArchitectureRegistry } from '../module.js';
import { resolveRewardTrainConfig } from '../reward-config.js';
import { trainRewardEnsemble } from '../reward-trainer.js';

/** The tiny backbone every case is built on. */
export function contractGptConfig(vocabSize: number): GptConfig {
  return gptPreset('nano', { vocabSize, dModel: 16, nLayers: 2, nHeads: 2, contextLength: 32 });
}

/** A small untrained backbone for command and pipeline tests: nano, d 32, 2 layers, context 64. */
export function tinyGptConfig(vocabSize: number): GptConfig {
  return gptPreset('nano', { vocabSize, dModel: 32, nLayers: 2, nHeads: 2, contextLength: 64 });
}

/**
 * Builds an untrained built-in ensemble (default: linear-heads, k = 3, seed 1) on the project tokenizer
 * and saves it to `dir` as `quorum train-rm` would: a reward-model folder for tests of commands that
 * load one. Its rewards are arbitrary but deterministic.
 */
export async function saveTinyEnsemble(
  dir: string,
  options: { architecture?: string; members?: number; seed?: number; gptConfig?: GptConfig } = {},
): Promise<void> {
  const tokenizer = projectTokenizer();
  const gptConfig = options.gptConfig ?? tinyGptConfig(tokenizer.vocabSize);
  const ensemble = builtinArchitectureRegistry()
    .create(options.architecture ?? 'linear-heads')
    .build({ gptConfig, members: options.members ?? 3, rng: new Rng(options.seed ?? 1) });
  try {
    await saveEnsemble(dir, ensemble, {
      architectureSource: '@quorum/ensemble',
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
    });
  } finally {
    ensemble.dispose();
  }
}

/** Real AlpacaEval-style pairs, small enough for one step per phase. */
const PAIRS = [
  { instruction: 'Name a primary colour.', chosen: 'Red is a primary colour.', rejected: 'Grass.' },
  { instruction: 'What is 2 + 2?', chosen: '2 + 2 equals 4.', rejected: 'It is 5.' },
  { instruction: 'Say hello in French.', chosen: 'Bonjour!', rejected: 'Hello.' },
  { instruction: 'Give an antonym of hot.', chosen: 'Cold.', rejected: 'Warm, very warm.' },
].map((p, i) => ({
  id: `contract-${i}`,
  prompt: { instruction: p.instruction, input: '' },
  chosen: p.chosen,
  rejected: p.rejected,
}));

function membersFor(arch: EnsembleArchitecture): number {
  return arch.name === 'single' ? 1 : 2;
}

export const ensembleArchitectureContract: ContractSuite<EnsembleArchitecture> =
  defineContractSuite<EnsembleArchitecture>('ensemble-architecture', (ctx) => {
    const tokenizer = projectTokenizer();
    const config = contractGptConfig(tokenizer.vocabSize);
    const seqs = PAIRS.map((p) => tokenizer.encode(`${p.prompt.instruction} ${p.chosen}`).slice(0, 24));
    const build = async (): Promise<{
      arch: EnsembleArchitecture;
      ensemble: TrainableEnsemble;
      k: number;
    }> => {
      const arch = await ctx.create();
      const k = membersFor(arch);
      return { arch, ensemble: arch.build({ gptConfig: config, members: k, rng: new Rng(3) }), k };
    };

    beforeAll(async () => {
      if (activeBackend() === undefined)
        await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
    });

    it('scores a batch into finite [k, B] rewards without leaking tensors', async () => {
      const { ensemble, k } = await build();
      await expectNoTensorLeaks(() => {
        const batch = tokenBatch(seqs, tokenizer.padId);
        const r = ensemble.score(batch);
        expect(r.shape).toEqual([k, seqs.length]);
        expect(Array.from(r.dataSync()).every(Number.isFinite)).toBe(true);
        tf.dispose([r, batch.ids, batch.mask]);
      });
      ensemble.dispose();
    });

    it('names every variable once and counts parameters consistently', async () => {
      const { arch, ensemble, k } = await build();
      const seen = new Set<string>();
      let total = 0;
      for (const vars of Object.values(ensemble.tensorFiles())) {
        for (const [name, v] of Object.entries(vars)) {
          expect(seen.has(name), `variable "${name}" appears twice`).toBe(false);
          seen.add(name);
          total += v.size;
        }
      }
      const counts = ensemble.paramCounts();
      expect(counts.total).toBe(total);
      expect(counts.members).toBe(k);
      expect(counts.trainable).toBeLessThanOrEqual(counts.total);
      if (arch.expectedParamCounts !== undefined) {
        const M = paramCount(config);
        const L = config.dModel + 1;
        expect(counts.total).toBe(arch.expectedParamCounts({ M, L, A: counts.adapter, k }).total);
      }
      ensemble.dispose();
    });

    it("trains one step per phase: finite loss, the phase's variables change", async () => {
      const { ensemble } = await build();
      const phases = ensemble.phases();
      expect(phases.length).toBeGreaterThan(0);
      for (const p of phases) {
        expect(p.dataShare[0]).toBeGreaterThanOrEqual(0);
        expect(p.dataShare[1]).toBeLessThanOrEqual(1);
        expect(p.dataShare[0]).toBeLessThan(p.dataShare[1]);
      }
      const before = new Map(
        phases.map((p) => [
          p.name,
          Object.fromEntries(Object.entries(p.variables()).map(([n, v]) => [n, Array.from(v.dataSync())])),
        ]),
      );
      const pairs = Array.from({ length: 8 }, (_, i) => PAIRS[i % PAIRS.length] as (typeof PAIRS)[number]);
      const result = await trainRewardEnsemble({
        ensemble,
        tokenizer,
        pairs,
        config: resolveRewardTrainConfig({
          batchSize: 2,
          gradAccum: 1,
          maxSteps: 1,
          maxLength: 32,
          checkpointEvery: 0,
        }),
      });
      for (const loss of Object.values(result.finalLoss)) expect(Number.isFinite(loss)).toBe(true);
      for (const p of phases) {
        const old = before.get(p.name) as Record<string, number[]>;
        const changed = Object.entries(p.variables()).some(([n, v]) =>
          Array.from(v.dataSync()).some((x, i) => x !== old[n]?.[i]),
        );
        expect(changed, `phase ${p.name} changed none of its variables`).toBe(true);
      }
      ensemble.dispose();
    });

    it('round-trips through a checkpoint folder', async () => {
      const { arch, ensemble } = await build();
      const dir = mkdtempSync(path.join(tmpdir(), 'quorum-contract-'));
      try {
        await saveEnsemble(dir, ensemble, {
          architectureSource: 'contract-test',
          vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
        });
        const registry = new StrategyRegistry<EnsembleArchitecture>(EnsembleArchitecture);
        registry.register(
          defineStrategy({
            name: arch.name,
            description: 'the architecture under test',
            source: 'contract-test',
            options: z.object({}).passthrough(),
            create: () => arch,
          }),
        );
        const { ensemble: loaded } = await loadEnsemble(dir, registry);
        expect(scoreSequences(loaded, seqs, tokenizer.padId)).toEqual(
          scoreSequences(ensemble, seqs, tokenizer.padId),
        );
        loaded.dispose();
      } finally {
        ensemble.dispose();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

/** Runs the contract over every architecture in a registry (the built-ins by default). */
export function runEnsembleArchitectureContract(registry: StrategyRegistry<EnsembleArchitecture>): void {
  ensembleArchitectureContract.runRegistry(registry);
}
