import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, resetComputeForTests } from '@quorum/core';
import { afterEach, describe, expect, it } from 'vitest';
import { infoReport } from './commands/info.js';
import { readProjectConfig } from './config-file.js';
import { createContext } from './context.js';
import { loadPlugin } from './plugins.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-fixtures');

afterEach(() => resetComputeForTests());

describe('plugins', () => {
  it('loads a plugin folder and shows its strategy in the info report', async () => {
    const ctx = await createContext({ plugin: [path.join(fixtures, 'plugin-hello')] });
    const report = await infoReport(ctx);
    expect(report.strategies['compute-backend']).toEqual(['wasm', 'cpu', 'tensorflow', 'native', 'slowpoke']);
    expect(report.plugins[0]?.name).toBe('quorum-plugin-hello');
    expect(['native', 'wasm']).toContain(report.backend.name);
  });

  it('rejects a plugin whose default export is not a ContainerModule', async () => {
    await expect(loadPlugin(path.join(fixtures, 'plugin-broken'))).rejects.toThrow(
      /must default-export an inversify ContainerModule/,
    );
  });

  it('names a missing plugin package and a missing path', async () => {
    await expect(loadPlugin('quorum-plugin-that-does-not-exist', fixtures)).rejects.toThrow(
      /npm install quorum-plugin-that-does-not-exist/,
    );
    await expect(loadPlugin('./nowhere', fixtures)).rejects.toThrow(ConfigError);
  });
});

describe('quorum.config.json', () => {
  it('reads plugins relative to the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-config-'));
    writeFileSync(
      path.join(dir, 'quorum.config.json'),
      JSON.stringify({ plugins: ['./p', 'some-package'], backend: 'cpu' }),
    );
    const config = readProjectConfig(undefined, dir);
    expect(config.plugins).toEqual([path.join(dir, 'p'), 'some-package']);
    expect(config.backend).toBe('cpu');
  });

  it('names the file and the option on a bad config', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-config-'));
    const file = path.join(dir, 'quorum.config.json');
    writeFileSync(file, JSON.stringify({ plugin: ['x'] }));
    expect(() => readProjectConfig(undefined, dir)).toThrow(
      /quorum\.config\.json: unknown option "plugin"[\s\S]*valid options: plugins, backend/,
    );
    writeFileSync(file, '{ "plugins": [1] }');
    expect(() => readProjectConfig(undefined, dir)).toThrow(
      /field "plugins\[0\]": expected string, got number 1/,
    );
    writeFileSync(file, '{ nope');
    expect(() => readProjectConfig(undefined, dir)).toThrow(/not valid JSON/);
  });
});
