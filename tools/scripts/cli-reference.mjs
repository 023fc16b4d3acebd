// Writes docs/cli.md from the commands' own --help (run after building the CLI). With --check, fails
// when docs/cli.md is out of date instead of writing it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { buildProgram } = await import(path.join(root, 'apps/cli/dist/program.js'));

/** The full --help text (addHelpText sections included), captured in process. */
function helpOf(command) {
  let text = '';
  command.configureOutput({
    writeOut: (s) => (text += s),
    getOutHelpWidth: () => 100,
    getOutHasColors: () => false,
  });
  command.outputHelp();
  return text;
}

const program = buildProgram();
const parts = [
  '# `quorum` command reference',
  '',
  "Generated from the commands' own `--help` by `node tools/scripts/cli-reference.mjs`; do not edit by hand.",
  '',
  '```text',
  helpOf(program).trimEnd(),
  '```',
];
for (const command of program.commands) {
  if (command.name() === 'help') continue;
  parts.push(
    '',
    `## quorum ${command.name()}`,
    '',
    command.description(),
    '',
    '```text',
    helpOf(command).trimEnd(),
    '```',
  );
}
const text = `${parts.join('\n')}\n`;
const target = path.join(root, 'docs/cli.md');
if (process.argv.includes('--check')) {
  const current = readFileSync(target, 'utf8');
  if (current !== text) {
    console.error('docs/cli.md is out of date: run `node tools/scripts/cli-reference.mjs`');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target}`);
}
