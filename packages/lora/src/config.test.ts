import { resolveGptConfig } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeLoraAdapters, initLoraAdapters } from './adapters.js';
import {
  adaptedSites,
  adapterParamCount,
  firstAdaptedLayer,
  loraTargets,
  modelLoraModules,
  moduleShape,
  resolveLoraConfig,
  sitePrefix,
} from './config.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const gpt = resolveGptConfig({ vocabSize: 50, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 });

describe('LoraConfig', () => {
  it('has the documented defaults', () => {
    expect(resolveLoraConfig({})).toEqual({
      rank: 8,
      alpha: 16,
      dropout: 0,
      targets: 'all-linear',
      layers: 'all',
    });
    // on the Quorum GPT, 'all-linear' is the six layers it always adapted, in forward order
    const six = ['q', 'k', 'v', 'o', 'fc', 'proj'];
    expect(adaptedSites(gpt, resolveLoraConfig({})).map((s) => `${s.layer}.${s.module}`)).toEqual([
      ...six.map((m) => `0.${m}`),
      ...six.map((m) => `1.${m}`),
    ]);
    expect(adaptedSites(gpt, resolveLoraConfig({}))).toEqual(
      adaptedSites(gpt, resolveLoraConfig({ targets: six })),
    );
  });

  it('keeps targets in forward order and accepts { top: N }', () => {
    const c = resolveLoraConfig({ targets: ['proj', 'q'], layers: { top: 1 } });
    expect(c.targets).toEqual(['q', 'proj']);
    expect(c.layers).toEqual({ top: 1 });
  });

  it('names the bad field', () => {
    expect(() => resolveLoraConfig({ rank: 0 })).toThrow(ConfigError);
    expect(() => resolveLoraConfig({ rank: 0 })).toThrow(/rank/);
    expect(() => resolveLoraConfig({ targets: ['q', 'up'] })).toThrow(/targets/);
    expect(() => resolveLoraConfig({ targets: [] })).toThrow(/targets/);
    expect(() => resolveLoraConfig({ targets: 'all' })).toThrow(/targets/);
    expect(() => resolveLoraConfig({ targets: ['q', 'q'] })).toThrow(/targets/);
    expect(() => resolveLoraConfig({ layers: { top: 0 } })).toThrow(/layers/);
    expect(() => resolveLoraConfig({ layers: 'some' })).toThrow(/layers/);
    expect(() => resolveLoraConfig({ rnak: 4 })).toThrow(/rnak/);
    expect(() => resolveLoraConfig({ rank: 0 }, 'lora')).toThrow(/lora\.rank/);
  });

  it('finds the first adapted layer', () => {
    expect(firstAdaptedLayer(gpt, resolveLoraConfig({}))).toBe(0);
    expect(firstAdaptedLayer(gpt, resolveLoraConfig({ layers: { top: 1 } }))).toBe(1);
    expect(firstAdaptedLayer(gpt, resolveLoraConfig({ layers: { top: 2 } }))).toBe(0);
    expect(() => firstAdaptedLayer(gpt, resolveLoraConfig({ layers: { top: 3 } }))).toThrow(/layers\.top 3/);
  });

  it('lists the adapted sites with their shapes', () => {
    const sites = adaptedSites(gpt, resolveLoraConfig({ targets: ['q', 'fc', 'proj'], layers: { top: 1 } }));
    expect(sites).toEqual([
      { layer: 1, module: 'q', inDim: 16, outDim: 16 },
      { layer: 1, module: 'fc', inDim: 16, outDim: 64 },
      { layer: 1, module: 'proj', inDim: 64, outDim: 16 },
    ]);
  });
});

describe('adapterParamCount (the paper’s A, per member)', () => {
  it('matches hand counts', () => {
    // per layer: q, k, v, o: 4 · 8 · (16 + 16) = 1024; fc and proj: 2 · 8 · (16 + 64) = 1280 → 2304
    expect(adapterParamCount(gpt, resolveLoraConfig({}))).toBe(2 * 2304);
    expect(adapterParamCount(gpt, resolveLoraConfig({ layers: { top: 1 } }))).toBe(2304);
    expect(adapterParamCount(gpt, resolveLoraConfig({ rank: 2, targets: ['q', 'v'] }))).toBe(2 * 2 * 2 * 32);
  });

  it('matches the variables initLoraAdapters makes, divided by k', () => {
    for (const lora of [
      resolveLoraConfig({}),
      resolveLoraConfig({ rank: 3, targets: ['o', 'fc'], layers: { top: 1 } }),
    ]) {
      const adapters = initLoraAdapters(gpt, lora, 3, new Rng(1));
      const total = adapters.sites.reduce((n, s) => n + s.a.size + s.b.size, 0);
      expect(total).toBe(3 * adapterParamCount(gpt, lora));
      disposeLoraAdapters(adapters);
    }
  });
});

describe('targets on model families', () => {
  // Llama layout: 4 query heads sharing 2 kv heads of size 8 (q 32 wide on a 16-wide stream), SwiGLU of width 24.
  const llama = resolveGptConfig({
    vocabSize: 50,
    contextLength: 8,
    dModel: 16,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 8,
    positional: 'rope',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    mlpHidden: 24,
    attnBias: 'none',
    mlpBias: false,
  });

  it("'all-linear' adds gate on SwiGLU models; shapes come from the backbone (GQA k/v, head_dim, mlpHidden)", () => {
    expect(modelLoraModules(gpt)).toEqual(['q', 'k', 'v', 'o', 'fc', 'proj']);
    expect(modelLoraModules(llama)).toEqual(['q', 'k', 'v', 'o', 'gate', 'fc', 'proj']);
    const sites = adaptedSites(llama, resolveLoraConfig({ layers: { top: 1 } }));
    expect(sites.map((s) => [s.module, s.inDim, s.outDim])).toEqual([
      ['q', 16, 32],
      ['k', 16, 16],
      ['v', 16, 16],
      ['o', 32, 16],
      ['gate', 16, 24],
      ['fc', 16, 24],
      ['proj', 24, 16],
    ]);
    for (const s of sites) expect([s.inDim, s.outDim]).toEqual(moduleShape(llama, s.module));
    // rank 8: Σ 8 · (in + out)
    expect(adapterParamCount(llama, resolveLoraConfig({ layers: { top: 1 } }))).toBe(
      8 * (48 + 32 + 32 + 48 + 40 + 40 + 40),
    );
    expect(loraTargets(llama, resolveLoraConfig({ targets: ['gate', 'q'] }))).toEqual(['q', 'gate']);
    expect(sitePrefix(3, 'gate')).toBe('h.3.mlp.gate');
  });

  it('a target the model lacks is a ConfigError naming it and the model’s layers', () => {
    const lora = resolveLoraConfig({ targets: ['q', 'gate'] });
    for (const f of [
      () => adaptedSites(gpt, lora),
      () => adapterParamCount(gpt, lora),
      () => initLoraAdapters(gpt, lora, 2, new Rng(1)),
      () => moduleShape(gpt, 'gate'),
    ]) {
      expect(f).toThrow(ConfigError);
      expect(f).toThrow(/"gate" is not a layer of this model; its linear layers are q, k, v, o, fc, proj/);
    }
    expect(() => adaptedSites(gpt, lora)).toThrow(/hint: "gate" exists only in SwiGLU models/);
    expect(() => adaptedSites(llama, resolveLoraConfig({ targets: ['q'] }))).not.toThrow();
  });
});
