import type { TestProject } from 'vitest/node';
import { buildOperator } from './build.js';
import { startControlPlane } from './control-plane.js';
import { installProjectCrds } from './local-stack/crds.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin (system:masters) kubeconfig of the run's control plane. */
    kubeconfigPath: string;
    /** Folder with kube-apiserver, kube-controller-manager, kubectl, etcd and helm. */
    binDir: string;
    /** https://127.0.0.1:PORT */
    apiServer: string;
  }
}

/**
 * One control plane for the whole e2e run: starting it costs seconds, and tests isolate themselves
 * with their own namespaces (see createTestNamespace) instead of their own clusters.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  // dist/ is built once, before any test file runs: a build while another file's compiled
  // replicas start would let them load half-written files.
  const [cp] = await Promise.all([
    startControlPlane({ log, beforeControllerManager: installProjectCrds }),
    buildOperator().then(() => {
      process.env.OIDC_OPERATOR_DIST_BUILT = '1';
    }),
  ]);
  project.provide('kubeconfigPath', cp.kubeconfigPath);
  project.provide('binDir', cp.binDir);
  project.provide('apiServer', cp.server);
  // Child processes spawned by tests (kubectl, helm, the operator CLI) find the cluster by default.
  process.env.KUBECONFIG = cp.kubeconfigPath;
  return async () => {
    await cp.stop();
    log('[control-plane] stopped');
  };
}
