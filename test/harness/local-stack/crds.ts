// Installs the operator's CRDs from crds/ the way users do (kubectl apply --server-side) and waits
// until they are served. Pass it as startControlPlane's beforeControllerManager so the garbage
// collector knows the kinds from its first discovery (prompt ownerReference GC of the Secrets).
import { fileURLToPath } from 'node:url';
import { kubectl } from '../tools.js';

export const CRDS_DIR = fileURLToPath(new URL('../../../crds/', import.meta.url));

export async function installProjectCrds(kubeconfigPath: string, binDir: string): Promise<void> {
  const apply = await kubectl(binDir, kubeconfigPath, ['apply', '--server-side', '-f', CRDS_DIR]);
  if (apply.code !== 0) throw new Error(`kubectl apply -f crds/ failed: ${apply.stderr.trim()}`);
  const wait = await kubectl(binDir, kubeconfigPath, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    CRDS_DIR,
  ]);
  if (wait.code !== 0) throw new Error(`CRDs not established: ${wait.stderr.trim()}`);
}
