import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// End-to-end tests spawn real processes and share the machine's two cores: run files one at a time.
export default mergeConfig(shared, defineConfig({ test: { fileParallelism: false, testTimeout: 600_000 } }));
