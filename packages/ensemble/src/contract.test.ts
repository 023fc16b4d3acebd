import { builtinArchitectureRegistry } from './module.js';
import { runEnsembleArchitectureContract } from './testing/index.js';

runEnsembleArchitectureContract(builtinArchitectureRegistry());
