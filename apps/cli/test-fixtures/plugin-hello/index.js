// A minimal plugin used by the CLI tests: contributes one extra compute backend through the public API.
import { ComputeBackend, defineStrategy, strategyModule } from '@quorum/core';
import { z } from 'zod';

const slowpoke = defineStrategy({
  name: 'slowpoke',
  description: 'test plugin backend (never chosen by default)',
  source: 'quorum-plugin-hello',
  options: z.object({}).strict(),
  create: () => ({
    name: 'slowpoke',
    priority: -100,
    probe: async () => ({ available: true }),
    activate: async (tf) => {
      await tf.setBackend('cpu');
      return { threads: 1 };
    },
  }),
});

export default strategyModule({ strategies: [{ point: ComputeBackend, definitions: [slowpoke] }] });
