import { builtinBackendDefinitions, ComputeBackend } from './backend.js';
import { type ContainerModule, strategyModule } from './container.js';

/** Core's ContainerModule: owns the `compute-backend` point and contributes wasm, cpu and tensorflow. */
export function coreModule(): ContainerModule {
  return strategyModule({
    points: [ComputeBackend],
    strategies: [{ point: ComputeBackend, definitions: builtinBackendDefinitions }],
  });
}
