// Packages others can install: pack the packages with `npm pack`, install them into a scratch project
// outside the workspace, and score a few answers there with nothing but the published entry points.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const scratch = mkdtempSync(path.join(tmpdir(), 'quorum-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// The scorer needs these; each is packed exactly as it would be published.
const PACKAGES = ['core', 'data', 'backbone', 'heads', 'lora', 'aggregation', 'ensemble'];

const SCRIPT = `
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { createAggregationRule } from '@quorum/aggregation';
import { gptPreset } from '@quorum/backbone';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, scoreAnswers } from '@quorum/ensemble';

await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
const tokenizer = projectTokenizer();
const gptConfig = gptPreset('nano', { vocabSize: tokenizer.vocabSize, dModel: 32, nLayers: 2, nHeads: 2, contextLength: 64 });
const ensemble = builtinArchitectureRegistry().create('linear-heads').build({ gptConfig, members: 3, rng: new Rng(0) });
const prompt = { instruction: 'Name a primary colour.', input: '' };
const rewards = scoreAnswers(ensemble, tokenizer, ['Red.', 'Blue is one.', 'Grass.'].map((answer) => ({ prompt, answer })));
const lcb = createAggregationRule(['lcb', { beta: 0.5 }]).aggregateArrays(rewards);
console.log(JSON.stringify({ members: rewards.length, answers: rewards[0].length, lcb: lcb.aggregate }));
`;

describe('published packages work outside the monorepo', () => {
  it('packs, installs into a scratch project and scores answers', () => {
    const tarballs = path.join(scratch, 'tarballs');
    mkdirSync(tarballs);
    const deps: Record<string, string> = {};
    for (const name of PACKAGES) {
      const out = execFileSync(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs],
        {
          cwd: path.join(root, 'packages', name),
          encoding: 'utf8',
        },
      );
      const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
      // Sources ship (the source maps point at them), tests do not.
      expect(info?.files.some((f) => f.path.startsWith('src/'))).toBe(true);
      expect(info?.files.some((f) => /\.test\.ts$/.test(f.path))).toBe(false);
      deps[`@quorum/${name}`] = `file:${path.join(tarballs, info?.filename as string)}`;
    }
    const tfjs = JSON.parse(
      readFileSync(path.join(root, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8'),
    ).version;
    const project = path.join(scratch, 'project');
    mkdirSync(project);
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        type: 'module',
        dependencies: { ...deps, '@tensorflow/tfjs': tfjs, '@tensorflow/tfjs-backend-wasm': tfjs },
      }),
    );
    // The npm registry is reachable here; --prefer-offline uses the cache the workspace install filled.
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], {
      cwd: project,
      stdio: 'pipe',
      timeout: 600_000,
    });
    writeFileSync(path.join(project, 'score.mjs'), SCRIPT);
    const printed = execFileSync(process.execPath, ['score.mjs'], { cwd: project, encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1) as string;
    const result = JSON.parse(printed) as { members: number; answers: number; lcb: number[] };
    expect(result.members).toBe(3);
    expect(result.answers).toBe(3);
    expect(result.lcb.every(Number.isFinite)).toBe(true);
  });
});
