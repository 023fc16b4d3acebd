// Root `prepare` (runs after `npm ci` / `npm install`): builds the packages the `quorum` command needs,
// so `npx quorum …` works on a fresh clone. The bin shim in apps/cli/bin is committed; it loads dist/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (process.env.QUORUM_SKIP_PREPARE === '1') process.exit(0);
if (!existsSync('apps/cli/tsconfig.json')) process.exit(0);
const result = spawnSync('npx', ['tsc', '-b', 'apps/cli/tsconfig.json'], { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'quorum: building the CLI failed (see above); `npx quorum` will not work until `npm run build` passes.',
  );
  process.exit(result.status ?? 1);
}
