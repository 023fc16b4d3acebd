// Source templates of the plugin generator, one per extension point. Each returns the files of src/.
// `n` holds the names: n.name (kebab, the registry name), n.camel, n.pascal, n.pkg (package name).

const aggregation = (n) => ({
  deps: ['@quorum/core', '@quorum/aggregation'],
  devDeps: ['@quorum/testing'],
  point: 'aggregation-rule',
  files: {
    [`src/${n.name}.ts`]: `/**
 * \`${n.name}\`: an aggregation rule — the members' rewards [k, B] become one reward per item [B].
 * This starting point is mean − β·std (a lower confidence bound); replace the two functions with your rule
 * and keep them in agreement (the contract suite checks the tensor and the array paths agree).
 */
import { AggregationRule, aggregationRule } from '@quorum/aggregation';
import { type ContainerModule, defineStrategy, resolveOptions, strategyModule } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

/** Options with their defaults; unknown keys and β < 0 are rejected with the option's path. */
export const ${n.camel}Options = z
  .object({
    beta: z.number().min(0).default(1).describe('weight of the members’ std subtracted from their mean (≥ 0)'),
  })
  .strict();

export type ${n.pascal}Options = z.output<typeof ${n.camel}Options>;

/** The rule as a plain factory (works without a container). */
export function ${n.camel}Rule(options: Partial<${n.pascal}Options> = {}): AggregationRule {
  const { beta } = resolveOptions(${n.camel}Options, options, 'aggregation-rule(${n.name})');
  return aggregationRule({
    name: '${n.name}',
    // Properties you claim are checked by the contract suite.
    properties: ['translationEquivariant', 'atMostMean'],
    aggregate: (_rewards, m) => tf.sub(m.mean, tf.mul(tf.sqrt(m.variance), beta)) as tf.Tensor1D, // [B]
    aggregateArrays: (_rewards, m) => m.mean.map((mu, i) => mu - beta * Math.sqrt(m.variance[i] as number)),
  });
}

/** The registry entry: \`--agg ${n.name} --agg-opt beta=0.5\`, or \`["${n.name}", { "beta": 0.5 }]\` in a config. */
export const ${n.camel}Strategy = defineStrategy({
  name: '${n.name}',
  description: 'mean − β·std of the members’ rewards',
  source: '${n.pkg}',
  options: ${n.camel}Options,
  create: (options): AggregationRule => ${n.camel}Rule(options),
});

/** The plugin's ContainerModule: contributes the rule to the aggregation-rule point. */
export function ${n.camel}Module(): ContainerModule {
  return strategyModule({
    strategies: [{ point: AggregationRule as never, definitions: [${n.camel}Strategy] as never }],
  });
}
`,
    [`src/${n.name}.test.ts`]: `import { aggregationRuleContract } from '@quorum/aggregation/testing';
import { useTestBackend } from '@quorum/testing';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';
import { ${n.camel}Rule, ${n.camel}Strategy } from './${n.name}.js';

useTestBackend();

// The contract every aggregation rule keeps, at the default options and another β.
aggregationRuleContract.run([
  { name: '${n.name}', create: () => ${n.camel}Strategy.create(${n.camel}Strategy.options.parse({})) },
  { name: '${n.name} beta=2', create: () => ${n.camel}Rule({ beta: 2 }) },
]);

describe('${n.name}', () => {
  it('members (1, 3): mean 2, population std 1, so β = 0.5 gives 1.5', () => {
    expect(${n.camel}Rule({ beta: 0.5 }).aggregateArrays([[1], [3]]).aggregate).toEqual([1.5]);
  });

  it('rejects a negative β, naming the option', () => {
    expect(() => ${n.camel}Rule({ beta: -1 })).toThrow(/beta/);
  });

  it('default-exports a ContainerModule', () => {
    expect(typeof plugin.load).toBe('function');
  });
});
`,
    'src/index.ts': `import { ${n.camel}Module } from './${n.name}.js';

export {
  type ${n.pascal}Options,
  ${n.camel}Module,
  ${n.camel}Options,
  ${n.camel}Rule,
  ${n.camel}Strategy,
} from './${n.name}.js';

/** What \`quorum --plugin\` loads. */
export default ${n.camel}Module();
`,
  },
});

const architecture = (n) => ({
  deps: ['@quorum/core', '@quorum/ensemble', '@quorum/backbone', '@quorum/heads'],
  devDeps: ['@quorum/testing'],
  point: 'ensemble-architecture',
  files: {
    [`src/${n.name}.ts`]: `/**
 * \`${n.name}\`: an ensemble architecture. This starting point is one shared transformer with k linear
 * heads, trained together in one phase (M + kL parameters). Change \`build\` to your design: the trainer,
 * checkpoints, scoring and metrics are generic and only use the TrainableEnsemble interface.
 */
import { gptHidden, lastTokenHidden } from '@quorum/backbone';
import { type ContainerModule, defineStrategy, type Rng, strategyModule } from '@quorum/core';
import {
  type BuildContext,
  backboneVariables,
  countParameters,
  EnsembleArchitecture,
  headVariables,
  makeBackbone,
  makeHeads,
  type TokenBatch,
  type TrainableEnsemble,
} from '@quorum/ensemble';
import { multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const ${n.camel}Options = z.object({}).strict();

/** Builds the ensemble: called for training, and with the same context when a checkpoint is loaded. */
export function build${n.pascal}(context: BuildContext): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  const backbone = makeBackbone(context, rng.fork('backbone'));
  const heads = makeHeads(config.dModel, k, rng); // w [D, k], b [k]
  const backboneVars = backboneVariables(backbone);
  const headVars = headVariables(heads);
  const rewards = (batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const hidden = gptHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, T, D]
      return multiHeadRewards(heads.w, heads.b, lastTokenHidden(hidden, batch.mask)); // [k, B]
    });
  const M = countParameters(backboneVars);
  const total = M + countParameters(headVars);
  return {
    architecture: '${n.name}',
    members: k,
    gptConfig: config,
    options: {},
    score: (batch) => rewards(batch, undefined),
    phases: () => [
      {
        name: 'members',
        kind: 'full',
        dataShare: [0, 1],
        orderLabel: 'members',
        members: Array.from({ length: k }, (_, m) => m),
        sharedTrunk: k > 1,
        variables: () => ({ ...backboneVars, ...headVars }),
        rewards,
      },
    ],
    tensorFiles: () => ({ 'backbone.safetensors': backboneVars, 'heads.safetensors': headVars }),
    paramCounts: () => ({
      total,
      trainable: total,
      byPhase: { members: total },
      backbone: M,
      head: config.dModel + 1,
      adapter: 0,
      members: k,
    }),
    dispose: () => {
      for (const v of [...Object.values(backboneVars), ...Object.values(headVars)]) v.dispose();
    },
  };
}

/** The registry entry: \`quorum train-rm --arch ${n.name} --members K\` with this plugin loaded. */
export const ${n.camel}Strategy = defineStrategy({
  name: '${n.name}',
  description: 'one shared transformer, k linear heads: M + kL parameters',
  source: '${n.pkg}',
  options: ${n.camel}Options,
  create: (): EnsembleArchitecture => ({
    name: '${n.name}',
    build: build${n.pascal},
    expectedParamCounts: ({ M, L, k }) => ({ total: M + k * L }),
  }),
});

/** The plugin's ContainerModule: contributes the architecture to the ensemble-architecture point. */
export function ${n.camel}Module(): ContainerModule {
  return strategyModule({
    strategies: [{ point: EnsembleArchitecture as never, definitions: [${n.camel}Strategy] as never }],
  });
}
`,
    [`src/${n.name}.test.ts`]: `import { ensembleArchitectureContract } from '@quorum/ensemble/testing';
import { useTestBackend } from '@quorum/testing';
import { expect, it } from 'vitest';
import plugin from './index.js';
import { ${n.camel}Strategy } from './${n.name}.js';

useTestBackend();

// The contract every ensemble architecture keeps: shapes, no leaks, parameter counts, one training step
// per phase, and a save/load round trip.
ensembleArchitectureContract.run([{ name: '${n.name}', create: () => ${n.camel}Strategy.create({}) }]);

it('default-exports a ContainerModule', () => {
  expect(typeof plugin.load).toBe('function');
});
`,
    'src/index.ts': `import { ${n.camel}Module } from './${n.name}.js';

export { build${n.pascal}, ${n.camel}Module, ${n.camel}Options, ${n.camel}Strategy } from './${n.name}.js';

/** What \`quorum --plugin\` loads. */
export default ${n.camel}Module();
`,
  },
});

const judge = (n, opts) => ({
  deps: ['@quorum/core', '@quorum/eval'],
  devDeps: ['@quorum/testing'],
  point: 'judge',
  files: {
    [`src/${n.name}.ts`]: `/**
 * \`${n.name}\`: a judge. This starting point prefers the longer answer (a well-known judge bias, useful
 * as a baseline); replace \`compare\` (and \`score\`) with your judge. Swapping a and b must swap the verdict.
 */
import { type ContainerModule, defineStrategy, strategyModule } from '@quorum/core';
import { type CompareItem, Judge, type ScoreItem, type Verdict } from '@quorum/eval';
import { z } from 'zod';

export const ${n.camel}Options = z.object({}).strict();

export function ${n.camel}Judge(): Judge {
  return {
    name: '${n.name}',
    compare: async (item: CompareItem): Promise<Verdict> => {
      const a = item.a.length;
      const b = item.b.length;
      const p = a + b === 0 ? 0.5 : a / (a + b); // probability that a is better
      return { winner: a > b ? 'a' : a < b ? 'b' : 'tie', p };
    },
    score: async (item: ScoreItem): Promise<number> => item.answer.length,
  };
}

/** The registry entry: \`--judge ${n.name}\` with this plugin loaded. */
export const ${n.camel}Strategy = defineStrategy({
  name: '${n.name}',
  description: 'prefers the longer answer (a baseline judge)',
  source: '${n.pkg}',
  options: ${n.camel}Options,
  create: (): Judge => ${n.camel}Judge(),
});

/** The plugin's ContainerModule: contributes the judge to the judge point. */
export function ${n.camel}Module(): ContainerModule {
  return strategyModule({ strategies: [{ point: Judge as never, definitions: [${n.camel}Strategy] as never }] });
}
`,
    [`src/${n.name}.test.ts`]: opts.judgeContract
      ? `import { judgeContract } from '@quorum/eval/testing';
import { expect, it } from 'vitest';
import plugin from './index.js';
import { ${n.camel}Judge } from './${n.name}.js';

// The contract every judge keeps: verdicts, p in [0, 1], swap symmetry, repeatability.
judgeContract.run([{ name: '${n.name}', create: () => ${n.camel}Judge() }]);

it('default-exports a ContainerModule', () => {
  expect(typeof plugin.load).toBe('function');
});
`
      : `// @quorum/eval/testing (the judge contract suite) was not available when this plugin was generated;
// these tests check the same basics by hand. Switch to \`judgeContract.run([...])\` when it is.
import { describe, expect, it } from 'vitest';
import plugin from './index.js';
import { ${n.camel}Judge } from './${n.name}.js';

describe('${n.name}', () => {
  const item = { instruction: 'Say hi.', a: 'Hello there!', b: 'Hi.' };

  it('gives a verdict and p in [0, 1], and swapping the answers swaps them', async () => {
    const j = ${n.camel}Judge();
    const v = await j.compare(item);
    const w = await j.compare({ ...item, a: item.b, b: item.a });
    expect(v.winner).toBe('a');
    expect(w.winner).toBe('b');
    expect((v.p ?? 0) + (w.p ?? 0)).toBeCloseTo(1, 12);
  });

  it('default-exports a ContainerModule', () => {
    expect(typeof plugin.load).toBe('function');
  });
});
`,
    'src/index.ts': `import { ${n.camel}Module } from './${n.name}.js';

export { ${n.camel}Judge, ${n.camel}Module, ${n.camel}Options, ${n.camel}Strategy } from './${n.name}.js';

/** What \`quorum --plugin\` loads. */
export default ${n.camel}Module();
`,
  },
});

const backend = (n) => ({
  deps: ['@quorum/core'],
  devDeps: [],
  point: 'compute-backend',
  files: {
    [`src/${n.name}.ts`]: `/**
 * \`${n.name}\`: a compute backend. This starting point runs on TensorFlow.js's plain \`cpu\` backend;
 * register your own tfjs backend or kernels in \`activate\`. \`probe\` must not change global tfjs state;
 * when the backend cannot run here it says why (never a silent fallback).
 */
import {
  type ActivationInfo,
  BackendError,
  ComputeBackend,
  type ContainerModule,
  defineStrategy,
  type ProbeResult,
  strategyModule,
  type Tfjs,
} from '@quorum/core';
import { z } from 'zod';

export const ${n.camel}Options = z.object({}).strict();

export function ${n.camel}Backend(): ComputeBackend {
  return {
    name: '${n.name}',
    // Below cpu (0): chosen only when named with --backend ${n.name} or QUORUM_BACKEND=${n.name}.
    priority: -10,
    probe: async (): Promise<ProbeResult> => ({ available: true }),
    activate: async (tfjs: Tfjs): Promise<ActivationInfo> => {
      if (!(await tfjs.setBackend('cpu'))) {
        throw new BackendError("${n.name}: tf.setBackend('cpu') failed", { hint: 'check the tfjs install' });
      }
      await tfjs.ready();
      return { threads: 1, details: 'tfjs cpu kernels' };
    },
  };
}

/** The registry entry: \`--backend ${n.name}\` with this plugin loaded. */
export const ${n.camel}Strategy = defineStrategy({
  name: '${n.name}',
  description: 'example backend on tfjs cpu',
  source: '${n.pkg}',
  options: ${n.camel}Options,
  create: (): ComputeBackend => ${n.camel}Backend(),
});

/** The plugin's ContainerModule: contributes the backend to the compute-backend point. */
export function ${n.camel}Module(): ContainerModule {
  return strategyModule({
    strategies: [{ point: ComputeBackend as never, definitions: [${n.camel}Strategy] as never }],
  });
}
`,
    [`src/${n.name}.test.ts`]: `import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';
import { ${n.camel}Strategy } from './${n.name}.js';

describe('${n.name}', () => {
  it('probes without touching tfjs', async () => {
    const before = tf.getBackend();
    expect(await ${n.camel}Strategy.create({}).probe()).toEqual({ available: true });
    expect(tf.getBackend()).toBe(before);
  });

  it('is activated by name through initCompute and computes', async () => {
    const registry = builtinBackendRegistry().register(${n.camel}Strategy as never);
    const active = await initCompute({ registry, backend: '${n.name}', warn: () => {} });
    expect(active.name).toBe('${n.name}');
    const t = tf.add(tf.tensor1d([1, 2]), 1);
    expect(Array.from(t.dataSync())).toEqual([2, 3]);
    t.dispose();
  });

  it('default-exports a ContainerModule', () => {
    expect(typeof plugin.load).toBe('function');
  });
});
`,
    'src/index.ts': `import { ${n.camel}Module } from './${n.name}.js';

export { ${n.camel}Backend, ${n.camel}Module, ${n.camel}Options, ${n.camel}Strategy } from './${n.name}.js';

/** What \`quorum --plugin\` loads. */
export default ${n.camel}Module();
`,
  },
});

export const TEMPLATES = { aggregation, architecture, judge, backend };
