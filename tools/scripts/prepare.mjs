// Root `prepare` (runs after `npm ci` / `npm install`): builds the packages the `quorum` command needs and
// the example plugin, so `npx quorum …` and `npx quorum info --plugin examples/plugin-warm` (the README's
// example) work on a fresh clone. The bin shim in apps/cli/bin is committed; it loads dist/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (process.env.QUORUM_SKIP_PREPARE === '1') process.exit(0);
const projects = ['apps/cli/tsconfig.json', 'examples/plugin-warm/tsconfig.json'].filter((p) =>
  existsSync(p),
);
if (projects.length === 0) process.exit(0);
const result = spawnSync('npx', ['tsc', '-b', ...projects], { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'quorum: building the CLI and the example plugin failed (see above); `npx quorum` will not work until `npm run build` passes.',
  );
  process.exit(result.status ?? 1);
}
