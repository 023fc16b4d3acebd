import { resolveGptConfig } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeLoraAdapters, initLoraAdapters } from './adapters.js';
import { adaptedSites, adapterParamCount, firstAdaptedLayer, resolveLoraConfig } from './config.js';

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
      targets: ['q', 'k', 'v', 'o', 'fc', 'proj'],
      layers: 'all',
    });
  });

  it('keeps targets in forward order and accepts { top: N }', () => {
    const c = resolveLoraConfig({ targets: ['proj', 'q'], layers: { top: 1 } });
    expect(c.targets).toEqual(['q', 'proj']);
    expect(c.layers).toEqual({ top: 1 });
  });

  it('names the bad field', () => {
    expect(() => resolveLoraConfig({ rank: 0 })).toThrow(ConfigError);
    expect(() => resolveLoraConfig({ rank: 0 })).toThrow(/rank/);
    expect(() => resolveLoraConfig({ targets: ['q', 'gate'] })).toThrow(/targets/);
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
