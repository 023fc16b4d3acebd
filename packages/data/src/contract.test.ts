import { createQuorumContainer, defineStrategy, registryFor } from '@quorum/core';
import { z } from 'zod';
import { asObject, DatasetFormat, rowId, stringField } from './index.js';
import { dataModule } from './module.js';
import { datasetFormatContract, runDatasetFormatContract } from './testing/index.js';

// Every built-in, through the container as the CLI builds it.
runDatasetFormatContract(registryFor(createQuorumContainer([dataModule()]), DatasetFormat));

// A plugin-style format built only from the public field helpers: {question, good, bad}.
const qaFormat = defineStrategy({
  name: 'qa-good-bad',
  description: '{question, good, bad}',
  source: 'test',
  options: z.object({}).strict(),
  create: (): DatasetFormat => ({
    name: 'qa-good-bad',
    kind: 'preference',
    detect: (row) => typeof row === 'object' && row !== null && 'good' in row,
    parse: (row, loc) => {
      const r = asObject(row, loc, '{"question", "good", "bad"}');
      return {
        id: rowId(loc),
        prompt: { instruction: stringField(r, 'question', loc), input: '' },
        chosen: stringField(r, 'good', loc),
        rejected: stringField(r, 'bad', loc),
      };
    },
  }),
});
datasetFormatContract.run([{ name: 'qa-good-bad (plugin)', create: () => qaFormat.create({}) }]);
