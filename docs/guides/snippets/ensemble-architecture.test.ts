// shared-heads.test.ts — shapes, leaks, parameter counts, one training step per phase, save/load.
import { ensembleArchitectureContract } from '@quorum/ensemble/testing';
import { useTestBackend } from '@quorum/testing';
import { sharedHeadsStrategy } from './ensemble-architecture.js';

useTestBackend();
ensembleArchitectureContract.run([{ name: 'shared-heads', create: () => sharedHeadsStrategy.create({}) }]);
