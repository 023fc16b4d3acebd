/**
 * The `lora` and `linear-heads` ensembles on a real Llama-family backbone: llama2.c's stories260K (grouped-query
 * attention 8/4 heads, head_dim 8, SwiGLU 172, RMSNorm, RoPE) with its own tokenizer, trained one step per phase
 * on real AlpacaEval pairs with the generic trainer, then scored merged (LoRA's per-member weights) and factored,
 * saved and loaded. Lives in @quorum/hf because ensemble must not import hf (hf depends on ensemble).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { disposeGpt, namedParameters } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { datasets, loadTokenizer, type PreferencePair, type TextTokenizer } from '@quorum/data';
import {
  builtinArchitectureRegistry,
  encodePairs,
  loadEnsemble,
  pairTokenBatch,
  resolveRewardTrainConfig,
  saveEnsemble,
  scoreSequences,
  type TrainableEnsemble,
  trainRewardEnsemble,
} from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadHfModel } from './load.js';

const dir = fileURLToPath(new URL('../models/stories260K/', import.meta.url));
const K = 3;
const MAX_LENGTH = 48;

let model: HfModel;
let tokenizer: TextTokenizer;
let pairs: PreferencePair[];

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  model = await loadHfModel(dir);
  tokenizer = await loadTokenizer(dir, { onWarning: () => {} });
  // 8 real pairs: lora trains its trunk on 4 and its adapters on the other 4, one step of 2 pairs each.
  pairs = (await datasets.alpacaEval()).pairs({ split: 'train' }).slice(0, 8);
});

afterAll(() => {
  disposeGpt(model.params);
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

function snapshot(vars: Record<string, tf.Variable>): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

function build(architecture: 'lora' | 'linear-heads'): TrainableEnsemble {
  return builtinArchitectureRegistry()
    .create(architecture)
    .build({
      gptConfig: model.config,
      members: K,
      rng: new Rng(1),
      initBackbone: namedParameters(model.params),
    });
}

describe.each(['lora', 'linear-heads'] as const)('the %s ensemble on stories260K (Llama)', (architecture) => {
  it('trains one step per phase, scores merged = factored, and round-trips through a checkpoint', async () => {
    expect(model.config).toMatchObject({
      mlp: 'swiglu',
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      norm: 'rmsnorm',
    });
    const ensemble = build(architecture);
    const files = ensemble.tensorFiles();
    // the pretrained weights, not a fresh init
    const wq = namedParameters(model.params)['h.2.attn.q.w'] as tf.Variable;
    expect(maxAbsDiff(files['backbone.safetensors']?.['h.2.attn.q.w'] as tf.Variable, wq)).toBe(0);
    if (architecture === 'lora') {
      const adapters = files['adapters.safetensors'] as Record<string, tf.Variable>;
      // default 'all-linear' on a SwiGLU model: q k v o gate fc proj in each of the 5 blocks, shaped from the
      // backbone (k, v [64, 4·8 = 32] under GQA; gate, fc [64, 172]; proj [172, 64])
      expect(Object.keys(adapters).filter((n) => n.endsWith('.lora_A'))).toHaveLength(5 * 7);
      expect(adapters['h.4.mlp.gate.lora_A']?.shape).toEqual([K, 64, 8]);
      expect(adapters['h.4.mlp.gate.lora_B']?.shape).toEqual([K, 8, 172]);
      expect(adapters['h.0.attn.k.lora_B']?.shape).toEqual([K, 8, 32]);
      expect(adapters['h.0.attn.o.lora_A']?.shape).toEqual([K, 64, 8]);
      expect(adapters['h.0.mlp.proj.lora_A']?.shape).toEqual([K, 172, 8]);
      // per member: 5 blocks · r 8 · Σ(in + out) over q, o [64 ↔ 64], k, v [64 → 32], gate, fc, proj [64 ↔ 172]
      expect(ensemble.paramCounts().adapter).toBe(5 * 8 * (2 * (64 + 64) + 2 * (64 + 32) + 3 * (64 + 172)));
    }

    // one optimizer step per phase on real pairs, no tensor left behind
    const phases = ensemble.phases();
    expect(phases.map((p) => p.name)).toEqual(architecture === 'lora' ? ['trunk', 'adapters'] : ['members']);
    const before = new Map(phases.map((p) => [p.name, snapshot(p.variables())]));
    const tensorsBefore = tf.memory().numTensors;
    const result = await trainRewardEnsemble({
      ensemble,
      tokenizer,
      pairs,
      config: resolveRewardTrainConfig({
        batchSize: 2,
        gradAccum: 1,
        maxSteps: 1,
        maxLength: MAX_LENGTH,
        checkpointEvery: 0,
      }),
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(result.pairs.used).toBe(pairs.length);
    expect(result.steps).toEqual(Object.fromEntries(phases.map((p) => [p.name, 1])));
    for (const loss of Object.values(result.finalLoss)) expect(Number.isFinite(loss)).toBe(true);
    for (const p of phases) {
      const old = before.get(p.name) as Record<string, Float32Array>;
      const changed = Object.entries(p.variables()).filter(([n, v]) =>
        (v.dataSync() as Float32Array).some((x, i) => x !== old[n]?.[i]),
      );
      expect(changed.length, `phase ${p.name} changed none of its variables`).toBeGreaterThan(0);
      if (p.name === 'adapters') {
        // B starts at 0, so the first step moves every lora_B, the gate's included
        const movedB = changed.map(([n]) => n).filter((n) => n.endsWith('.lora_B'));
        expect(movedB).toHaveLength(5 * 7);
        expect(movedB).toContain('h.3.mlp.gate.lora_B');
      }
    }

    // Larger adapters than one step gives, so that merged vs factored is a sharp comparison.
    if (architecture === 'lora') {
      const rng = new Rng(9);
      for (const [name, v] of Object.entries(files['adapters.safetensors'] as Record<string, tf.Variable>)) {
        if (!name.endsWith('.lora_B')) continue;
        const t = tf.tensor(rng.normalArray(v.size, 0.05), v.shape);
        v.assign(t);
        t.dispose();
      }
    }
    const { encoded } = encodePairs(tokenizer, pairs, MAX_LENGTH);
    const batch = pairTokenBatch(encoded.slice(0, 4), tokenizer.padId);
    const scoringTensors = tf.memory().numTensors;
    const scored = ensemble.score(batch); // [k, 2·4]; lora: merged per-member weights
    expect(scored.shape).toEqual([K, 8]);
    expect(Array.from(scored.dataSync()).every(Number.isFinite)).toBe(true);
    const last = phases[phases.length - 1];
    const trained = last?.rewards(batch, undefined) as tf.Tensor2D; // the training pass (lora: factored)
    expect(maxAbsDiff(scored, trained)).toBeLessThan(1e-5);
    if (architecture === 'lora') {
      // the adapters matter: the trunk alone (phase 1's view) scores differently
      const trunk = phases[0]?.rewards(batch, undefined) as tf.Tensor2D;
      expect(maxAbsDiff(scored, trunk)).toBeGreaterThan(1e-3);
      trunk.dispose();
    }
    tf.dispose([scored, trained]);
    expect(tf.memory().numTensors).toBe(scoringTensors);
    tf.dispose([batch.ids, batch.mask]);

    // checkpoint round trip with the Hugging Face tokenizer
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-families-'));
    try {
      await saveEnsemble(out, ensemble, { architectureSource: '@quorum/ensemble', tokenizer });
      const loaded = await loadEnsemble(out, builtinArchitectureRegistry(), { onWarning: () => {} });
      expect(loaded.manifest.gptConfig).toEqual(model.config);
      expect(loaded.tokenizer.id).toBe(tokenizer.id);
      const seqs = encoded.slice(0, 4).flatMap((p) => [p.chosen, p.rejected]);
      expect(scoreSequences(loaded.ensemble, seqs, loaded.tokenizer.padId)).toEqual(
        scoreSequences(ensemble, seqs, tokenizer.padId),
      );
      loaded.ensemble.dispose();
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    ensemble.dispose();
  });
});
