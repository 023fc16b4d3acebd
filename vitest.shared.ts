import { defineConfig } from 'vitest/config';

/**
 * The one vitest config every project extends (`export { default } from '../../vitest.shared.ts'`).
 * vite 8's Oxc transform applies legacy decorators only to files tsconfig includes, so test files
 * get them here explicitly (STACK.md pitfall).
 */
export default defineConfig({
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
} as Parameters<typeof defineConfig>[0]);
