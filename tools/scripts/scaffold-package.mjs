// Creates an empty workspace package with Quorum's conventions (used once per package; the plugin
// generator in tools/ makes plugin packages). Usage: node tools/scripts/scaffold-package.mjs DIR NAME "DESCRIPTION" [dep ...]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [dir, name, description, ...deps] = process.argv.slice(2);
if (!dir || !name) throw new Error('usage: scaffold-package.mjs DIR NAME DESCRIPTION [@quorum/dep ...]');
const depth = dir.split('/').length;
const up = '../'.repeat(depth);
mkdirSync(path.join(dir, 'src'), { recursive: true });
const pkg = {
  name,
  version: '0.1.0',
  description,
  license: 'Apache-2.0',
  type: 'module',
  sideEffects: false,
  exports: {
    '.': { types: './dist/index.d.ts', import: './dist/index.js' },
    './package.json': './package.json',
    './internal/*': null,
  },
  files: ['dist', '!dist/**/*.test.*', 'README.md', 'LICENSE'],
  scripts: {
    build: 'tsc -b tsconfig.json',
    test: 'vitest run',
    typecheck: 'tsc -p tsconfig.test.json',
    lint: 'biome check .',
  },
  dependencies: Object.fromEntries(deps.map((d) => [d, '0.1.0'])),
};
const write = (f, text) => {
  if (!existsSync(path.join(dir, f))) writeFileSync(path.join(dir, f), text);
};
write('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
const refs = deps
  .filter((d) => d.startsWith('@quorum/'))
  .map((d) => ({ path: path.relative(dir, depDir(d)) }));
function depDir(d) {
  const short = d.slice('@quorum/'.length);
  if (short === 'best-of-n' || short === 'ppo') return `packages/policies/${short}`;
  if (short === 'cli') return 'apps/cli';
  return `packages/${short}`;
}
write(
  'tsconfig.json',
  `${JSON.stringify(
    {
      extends: `${up}tsconfig.base.json`,
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts'],
      references: refs,
    },
    null,
    2,
  )}\n`,
);
write(
  'tsconfig.test.json',
  `${JSON.stringify(
    {
      extends: `${up}tsconfig.base.json`,
      compilerOptions: {
        noEmit: true,
        composite: false,
        declaration: false,
        declarationMap: false,
        rootDir: up.replace(/\/$/, ''),
        allowImportingTsExtensions: true,
      },
      include: ['src/**/*.ts', 'test/**/*.ts', 'vitest.config.ts'],
    },
    null,
    2,
  )}\n`,
);
write('vitest.config.ts', `export { default } from '${up}vitest.shared.ts';\n`);
write('src/index.ts', 'export {};\n');
write('README.md', `# ${name}\n\n${description}\n`);
