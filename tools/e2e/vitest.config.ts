import { defineConfig, mergeConfig, type ViteUserConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// End-to-end tests spawn real processes and share the machine's two cores: run files one at a time.
export default mergeConfig(
  shared as ViteUserConfig,
  defineConfig({ test: { fileParallelism: false, testTimeout: 600_000 } }),
);
