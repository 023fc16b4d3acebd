#!/usr/bin/env node
// Fails when a guide's code block and its snippet file differ, so the guides cannot rot.
// A block is tied to a file by the comment line just before it:
//   <!-- snippet: snippets/aggregation-rule.ts -->
//   ```ts
//   …the file's exact contents…
//   ```
// The snippet files are type-checked by `npx tsc -p docs/guides`.
// Usage: node docs/guides/check-snippets.mjs [--write]   (--write copies each file into its block)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const write = process.argv.includes('--write');
const MARK = /^<!-- snippet: (\S+) -->\n```([a-z]*)\n([\s\S]*?)^```$/gm;
const problems = [];
let checked = 0;

for (const md of readdirSync(dir).filter((f) => f.endsWith('.md'))) {
  const file = path.join(dir, md);
  const text = readFileSync(file, 'utf8');
  const markers = text.match(/^<!-- snippet: /gm)?.length ?? 0;
  let found = 0;
  const updated = text.replace(MARK, (block, rel, lang, body) => {
    found++;
    const source = path.join(dir, rel);
    if (!existsSync(source)) {
      problems.push(`${md}: snippet ${rel} does not exist`);
      return block;
    }
    const code = readFileSync(source, 'utf8');
    checked++;
    if (code === body) return block;
    if (write) return `<!-- snippet: ${rel} -->\n\`\`\`${lang}\n${code}\`\`\``;
    const a = body.split('\n');
    const b = code.split('\n');
    const line = a.findIndex((l, i) => l !== b[i]);
    problems.push(
      `${md}: the block for ${rel} differs from the file at line ${line + 1}\n    block: ${JSON.stringify(a[line])}\n    file:  ${JSON.stringify(b[line])}`,
    );
    return block;
  });
  if (found !== markers)
    problems.push(`${md}: ${markers - found} snippet marker(s) not followed by a code block`);
  if (write && updated !== text) writeFileSync(file, updated);
}

if (problems.length > 0) {
  process.stderr.write(
    `${problems.join('\n')}\n\nfix: edit the snippet file, then run node docs/guides/check-snippets.mjs --write\n`,
  );
  process.exit(1);
}
process.stdout.write(`${checked} guide code blocks match their snippet files${write ? ' (written)' : ''}\n`);
