// What a release would publish: each public workspace package, its version and the files `npm pack` takes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const { workspaces } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const ws of workspaces) {
  const pkg = JSON.parse(readFileSync(path.join(root, ws, 'package.json'), 'utf8'));
  if (pkg.private === true) continue;
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: path.join(root, ws),
    encoding: 'utf8',
  });
  const [info] = JSON.parse(out);
  console.log(
    `${pkg.name}@${pkg.version}  ${info.entryCount} files, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
  );
}
