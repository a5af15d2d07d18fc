import { defineConfig } from 'vitest/config';

// Two projects: `unit` is pure logic with fakes; `e2e` runs on one real kube-apiserver + etcd
// (+ kube-controller-manager) started once per run by the global setup, and real registration servers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
