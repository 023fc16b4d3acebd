import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinBackendRegistry, ComputeBackend, createQuorumContainer, registryFor } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { kernelsNativeModule, nativeBackend, nativeBackendDefinition } from './backend.js';
import { broadcastMeta } from './elementwise.js';
import { nativeStatus, resolveThreads } from './install.js';
import { planMatMul } from './matmul.js';

describe('probe without a usable addon', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorum-native-'));

  it('reports a missing addon with the path and a rebuild hint', async () => {
    const addonPath = path.join(dir, 'absent.node');
    const probe = await nativeBackend({
      location: { addonPath, statusPath: path.join(dir, 'none.json') },
    }).probe();
    expect(probe.available).toBe(false);
    if (probe.available) return;
    expect(probe.reason).toContain('not built');
    expect(probe.reason).toContain(addonPath);
    expect(probe.hint).toContain('npm rebuild @quorum/kernels-native');
  });

  it('reports why the build failed, from build-status.json', async () => {
    const statusPath = path.join(dir, 'build-status.json');
    writeFileSync(
      statusPath,
      JSON.stringify({ ok: false, reason: 'no C++ compiler (c++ not found)', hint: 'install g++' }),
    );
    const location = { addonPath: path.join(dir, 'absent2.node'), statusPath };
    const probe = await nativeBackend({ location }).probe();
    expect(probe).toEqual({
      available: false,
      reason: 'the native addon failed to build: no C++ compiler (c++ not found)',
      hint: 'install g++',
    });
    const status = nativeStatus(location);
    expect(status.loaded).toBe(false);
    expect(status.build?.reason).toBe('no C++ compiler (c++ not found)');
    expect(status.kernels).toEqual([]);
  });

  it('reports a file that is not a loadable addon', () => {
    const addonPath = path.join(dir, 'broken.node');
    writeFileSync(addonPath, 'not an ELF file');
    const load = loadAddon({ addonPath, statusPath: path.join(dir, 'none.json') });
    expect(load.ok).toBe(false);
    if (!load.ok) expect(load.reason).toContain('does not load');
  });
});

describe('threads', () => {
  it('defaults to 2, reads QUORUM_THREADS, and rejects bad values', () => {
    expect(resolveThreads(undefined, {})).toBe(2);
    expect(resolveThreads(undefined, { QUORUM_THREADS: '3' })).toBe(3);
    expect(resolveThreads(1, { QUORUM_THREADS: '3' })).toBe(1);
    expect(() => resolveThreads(undefined, { QUORUM_THREADS: 'two' })).toThrow(
      /QUORUM_THREADS must be an integer/,
    );
    expect(() => resolveThreads(0, {})).toThrow(/threads must be an integer/);
  });
});

describe('registration', () => {
  it('contributes the native strategy to the compute-backend point', () => {
    const container = createQuorumContainer([kernelsNativeModule()]);
    const registry = registryFor(container, ComputeBackend);
    expect(registry.names()).toEqual(['native']);
    const backend = registry.create(['native', { threads: 1 }]);
    expect(backend.name).toBe('native');
    expect(backend.priority).toBeGreaterThan(builtinBackendRegistry().create('wasm').priority);
    expect(() => registry.create(['native', { threads: 0 }])).toThrow();
    expect(nativeBackendDefinition.source).toBe('@quorum/kernels-native');
  });
});

describe('planMatMul', () => {
  it('handles transposes and numpy batch broadcasting', () => {
    const p = planMatMul([2, 1, 5, 3], [1, 4, 7, 5], true, true);
    expect([p.m, p.n, p.k, p.batch]).toEqual([3, 7, 5, 8]);
    expect(p.outShape).toEqual([2, 4, 3, 7]);
    expect([...(p.aIdx ?? [])]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect([...(p.bIdx ?? [])]).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const q = planMatMul([6, 4, 3], [3, 2], false, false);
    expect(q.aIdx).toBeNull();
    expect(q.outShape).toEqual([6, 4, 2]);
    expect(() => planMatMul([4, 3], [4, 2], false, false)).toThrow(/inner shapes/);
  });
});

describe('broadcastMeta', () => {
  it('drops size-1 axes and merges contiguous ones', () => {
    expect([...broadcastMeta([2, 3, 4], [2, 3, 4]).meta]).toEqual([1, 24, 1, 1]);
    // [B,T,1] - [B,T,D]: rows of D with a broadcast along the row
    expect([...broadcastMeta([2, 3, 1], [2, 3, 4]).meta]).toEqual([2, 6, 4, 1, 0, 4, 1]);
    expect(broadcastMeta([1], [5, 1]).outShape).toEqual([5, 1]);
  });
});
