#!/usr/bin/env node
// Committed shim: loads the built CLI. The root `prepare` script builds it during `npm ci`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(
    'quorum: the CLI is not built yet. Run `npm run build` (or `npm ci`, which builds it) in the Quorum checkout.\n',
  );
  process.exit(1);
}
await import(main.href);
