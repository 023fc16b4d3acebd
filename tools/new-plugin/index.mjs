#!/usr/bin/env node
// Scaffolds a Quorum plugin package: `node tools/new-plugin/index.mjs --kind aggregation --name my-rule`.
// Run with --help for the details. Only Node's standard library is used, so it runs before any build.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TEMPLATES } from './templates.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

const KINDS = {
  aggregation: 'an aggregation rule (rewards [k, B] → [B]); tests run @quorum/aggregation/testing',
  architecture: 'an ensemble architecture (k reward models); tests run @quorum/ensemble/testing',
  judge: 'a judge (which of two answers is better); tests run @quorum/eval/testing when it exists',
  backend: 'a compute backend (where tensors are computed); tests probe and activate it',
};

const HELP = `Usage: node tools/new-plugin/index.mjs --kind KIND --name NAME [--dir DIR] [--package PKG]
       npm run new-plugin -- --kind KIND --name NAME [--dir DIR]

Scaffolds a Quorum plugin package that builds and passes its tests right away.

Options:
  --kind KIND     which extension point the plugin contributes to:
${Object.entries(KINDS)
  .map(([k, d]) => `                    ${k.padEnd(13)}${d}`)
  .join('\n')}
  --name NAME     the strategy's registry name, kebab-case (e.g. lcb-2, softmin, my-judge)
  --dir DIR       where to write the package (default: ./quorum-plugin-NAME); must not exist or be empty
  --package PKG   the npm package name (default: quorum-plugin-NAME)
  -h, --help      show this help

What you get:
  package.json         exports map (types + ESM), sideEffects: false, files, scripts build/test/typecheck
  tsconfig.json        build to dist/ (npx tsc -p tsconfig.json); tsconfig.test.json type-checks the tests
  vitest.config.ts     npx vitest run
  src/NAME.ts          the extension-point interface implemented as a minimal working example, its
                       registry entry (defineStrategy) and its ContainerModule
  src/index.ts         explicit named exports; the default export is the ContainerModule --plugin loads
  src/NAME.test.ts     the point's contract suite wired to the example, plus a hand-computed case
  README.md            usage; .changeset/NAME.md: the changeset announcing the plugin

Then:
  cd DIR && npx tsc -p tsconfig.json && npx vitest run
  npx quorum info --plugin DIR          # the new name appears under its extension point

Inside the Quorum workspace the @quorum/* packages resolve from the root node_modules; elsewhere run
npm install in DIR first. Guides: docs/guides/ (e.g. aggregation-rule.md).

Examples:
  $ node tools/new-plugin/index.mjs --kind aggregation --name lcb-2
  $ node tools/new-plugin/index.mjs --kind architecture --name shared-heads --dir plugins/shared-heads`;

function fail(message, hint) {
  process.stderr.write(`new-plugin: ${message}\n${hint === undefined ? '' : `  hint: ${hint}\n`}`);
  process.exit(2);
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** The version range a generated package depends on: the workspace's own version of each package. */
function versions() {
  const root = readJson(path.join(repo, 'package.json'));
  const out = {};
  const dirs = ['core', 'aggregation', 'ensemble', 'backbone', 'heads', 'eval', 'testing'];
  for (const d of dirs) {
    const file = path.join(repo, 'packages', d, 'package.json');
    if (existsSync(file)) out[`@quorum/${d}`] = `^${readJson(file).version}`;
  }
  const all = { ...root.dependencies, ...root.devDependencies };
  for (const name of ['@tensorflow/tfjs', 'zod', 'vitest', 'typescript', '@types/node'])
    out[name] = all[name];
  return out;
}

/** True when @quorum/eval exports its ./testing entry (the judge contract suite). */
function judgeContractAvailable() {
  const file = path.join(repo, 'packages/eval/package.json');
  return existsSync(file) && readJson(file).exports?.['./testing'] !== undefined;
}

function names(name, pkg) {
  const camel = name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
  const pascal = camel.charAt(0).toUpperCase() + camel.slice(1);
  return { name, camel: /^[0-9]/.test(camel) ? `_${camel}` : camel, pascal, pkg };
}

function packageJson(n, spec, v) {
  const pick = (list) => Object.fromEntries(list.map((d) => [d, v[d]]));
  return {
    name: n.pkg,
    version: '0.1.0',
    description: `Quorum plugin: the ${n.name} ${spec.point} strategy.`,
    license: 'Apache-2.0',
    type: 'module',
    sideEffects: false,
    exports: {
      '.': { types: './dist/index.d.ts', import: './dist/index.js' },
      './package.json': './package.json',
      './internal/*': null,
    },
    files: ['dist', '!dist/**/*.test.*', 'README.md'],
    keywords: ['quorum-plugin', spec.point],
    scripts: {
      build: 'tsc -p tsconfig.json',
      test: 'vitest run',
      typecheck: 'tsc -p tsconfig.test.json',
    },
    dependencies: { ...pick(spec.deps), zod: v.zod },
    peerDependencies: { '@tensorflow/tfjs': v['@tensorflow/tfjs'] },
    devDependencies: {
      ...pick(spec.devDeps),
      '@tensorflow/tfjs': v['@tensorflow/tfjs'],
      '@types/node': v['@types/node'],
      typescript: v.typescript,
      vitest: v.vitest,
    },
  };
}

const COMPILER = {
  target: 'ES2022',
  lib: ['ES2023'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  isolatedModules: true,
  verbatimModuleSyntax: true,
  esModuleInterop: true,
  skipLibCheck: true,
  forceConsistentCasingInFileNames: true,
  types: ['node'],
};

function readme(n, spec) {
  return `# ${n.pkg}

A Quorum plugin that adds \`${n.name}\` to the \`${spec.point}\` extension point. Generated by
\`tools/new-plugin\`; the code in \`src/${n.name}.ts\` is a minimal working example to change.

## Use it

\`\`\`sh
npx tsc -p tsconfig.json                      # build dist/
npx quorum info --plugin ${n.pkg === `quorum-plugin-${n.name}` ? `./quorum-plugin-${n.name}` : './path/to/this/folder'}
\`\`\`

or list it in \`quorum.config.json\`: \`{ "plugins": ["${n.pkg}"] }\`. The package's default export is its
\`ContainerModule\`; the named exports (\`${n.camel}Strategy\`, \`${n.camel}Module\`, …) work without a container.

## Develop

\`\`\`sh
npx vitest run                 # the ${spec.point} contract suite plus the plugin's own cases
npx tsc -p tsconfig.test.json  # type-check the tests too
\`\`\`

Import only the public entries of the @quorum packages (never \`@quorum/x/dist/...\`), dispose every tensor,
and keep the properties and shapes the contract suite checks.
`;
}

function main() {
  let args;
  try {
    args = parseArgs({
      options: {
        kind: { type: 'string' },
        name: { type: 'string' },
        dir: { type: 'string' },
        package: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail(error.message, 'run with --help for the options');
  }
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (args.kind === undefined || !(args.kind in KINDS)) {
    fail(
      `--kind must be one of ${Object.keys(KINDS).join(', ')}, got ${args.kind === undefined ? 'nothing' : `"${args.kind}"`}`,
      'e.g. --kind aggregation',
    );
  }
  if (args.name === undefined || !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(args.name)) {
    fail(
      `--name must be kebab-case (lower-case letters, digits, single dashes, starting with a letter), got ${args.name === undefined ? 'nothing' : `"${args.name}"`}`,
      'e.g. --name my-rule',
    );
  }
  const n = names(args.name, args.package ?? `quorum-plugin-${args.name}`);
  const dir = path.resolve(args.dir ?? `quorum-plugin-${args.name}`);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    fail(`${dir} exists and is not empty`, 'pick a new --dir, or remove the folder first');
  }
  const spec = TEMPLATES[args.kind](n, { judgeContract: judgeContractAvailable() });
  const v = versions();
  const files = {
    'package.json': `${JSON.stringify(packageJson(n, spec, v), null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: { ...COMPILER, rootDir: 'src', outDir: 'dist', declaration: true, sourceMap: true },
        include: ['src/**/*.ts'],
        exclude: ['src/**/*.test.ts'],
      },
      null,
      2,
    )}\n`,
    'tsconfig.test.json': `${JSON.stringify({ compilerOptions: { ...COMPILER, noEmit: true }, include: ['src/**/*.ts', 'vitest.config.ts'] }, null, 2)}\n`,
    'vitest.config.ts': `import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['src/**/*.test.ts'], environment: 'node', pool: 'forks', testTimeout: 60_000 },
});
`,
    '.gitignore': 'dist\nnode_modules\n',
    'README.md': readme(n, spec),
    [`.changeset/${n.name}.md`]: `---
"${n.pkg}": minor
---

New plugin: \`${n.name}\`, a strategy for the \`${spec.point}\` extension point. Load it with
\`--plugin ${n.pkg}\` or \`"plugins": ["${n.pkg}"]\` in quorum.config.json.
`,
    ...spec.files,
  };
  for (const [rel, text] of Object.entries(files)) {
    const target = path.join(dir, rel);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  const shown = path.relative(process.cwd(), dir) || '.';
  process.stdout.write(
    `Created ${n.pkg} (${args.kind}: ${n.name}) in ${shown}\n` +
      Object.keys(files)
        .sort()
        .map((f) => `  ${f}\n`)
        .join('') +
      `\nNext:\n  cd ${shown}\n  npx tsc -p tsconfig.json && npx vitest run\n  npx quorum info --plugin ${shown}\n`,
  );
}

main();
