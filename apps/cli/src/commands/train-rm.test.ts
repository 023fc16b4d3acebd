import { builtinArchitectureRegistry } from '@quorum/ensemble';
import { describe, expect, it } from 'vitest';
import { parseArchOptions } from './train-rm.js';

describe('parseArchOptions', () => {
  it('reads LoRA targets as a list (comma or plus) and layers=top:N, which the lora schema accepts', () => {
    for (const targets of ['targets=q,v', 'targets=q+v']) {
      const options = parseArchOptions(['rank=4', targets, 'layers=top:2']);
      expect(options).toEqual({ rank: 4, targets: ['q', 'v'], layers: { top: 2 } });
      expect(() => builtinArchitectureRegistry().create(['lora', options])).not.toThrow();
    }
  });

  it('leaves a bad target for the schema to reject by name', () => {
    const options = parseArchOptions(['targets=q,x']);
    expect(() => builtinArchitectureRegistry().create(['lora', options])).toThrow(/targets/);
  });
});
