import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { kubectl } from './tools.js';
import { waitFor } from './wait.js';

export { helm, kubectl } from './tools.js';
export { waitFor } from './wait.js';

/** A KubeConfig for the in-process client, read from the kubeconfig the global setup provides. */
export function kubeConfigFromFile(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** True for a client-node v2 error carrying HTTP status `code` (v2 throws ApiException, not a response). */
export function isApiError(error: unknown, code: number): boolean {
  return error instanceof ApiException && error.code === code;
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (without waiting for finalization); a namespace already gone is fine. */
  cleanup(): Promise<void>;
}

/** Namespace names are DNS-1123 labels: [a-z0-9-], at most 63 characters, alphanumeric at both ends. */
function sanitizePrefix(prefix: string): string {
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    // Room for '-' and the 8 hex characters of the random suffix.
    .slice(0, 63 - 9)
    .replace(/-+$/, '');
  return base || 'test';
}

/**
 * Test files share one control plane, so each isolates itself in a uniquely named namespace. The
 * label lists them when debugging a kept control plane (`kubectl get ns -l e2e.harness/test`).
 */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<TestNamespace> {
  const core = kc.makeApiClient(CoreV1Api);
  const base = sanitizePrefix(prefix);
  const name = `${base}-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'e2e.harness/test': base } } } });
  return {
    name,
    cleanup: async () => {
      try {
        await core.deleteNamespace({ name });
      } catch (error) {
        if (!isApiError(error, 404)) throw error;
      }
    },
  };
}

/**
 * Pipes YAML to `kubectl apply -f -`, the way users install manifests, so tests cover kubectl's
 * client-side handling (multi-document YAML, defaulting of namespaces) too. Returns kubectl's stdout.
 */
export async function kubectlApply(
  binDir: string,
  kubeconfig: string,
  yamlText: string,
  namespace?: string,
): Promise<string> {
  const result = await kubectl(binDir, kubeconfig, ['apply', '-f', '-'], { input: yamlText, namespace });
  if (result.code !== 0) {
    throw new Error(
      `kubectl apply failed (exit ${result.code}): ${result.stderr.trim()}\n--- input ---\n${yamlText}`,
    );
  }
  return result.stdout;
}

export interface DenyPolicy {
  /** Name of the ValidatingAdmissionPolicy and of its binding. */
  name: string;
  /** Only requests in this namespace are judged. */
  namespace: string;
  /** Core-group resources and operations it applies to, e.g. [CREATE, UPDATE] on [secrets]. */
  operations: readonly string[];
  resources: readonly string[];
  /** CEL: true lets the request through. */
  expression: string;
  message: string;
}

/**
 * Applies a ValidatingAdmissionPolicy and its binding that deny what `expression` refuses, in one
 * namespace: how tests make the apiserver refuse some of the operator's writes. It may take moments
 * to take effect: callers probe with a server-side dry run. Remove it with removeDenyPolicy.
 */
export async function applyDenyPolicy(binDir: string, kubeconfig: string, p: DenyPolicy): Promise<void> {
  await kubectlApply(
    binDir,
    kubeconfig,
    `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: ${p.name} }
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - { apiGroups: [''], apiVersions: [v1], operations: [${p.operations.join(', ')}], resources: [${p.resources.join(', ')}] }
  validations:
    - expression: ${JSON.stringify(p.expression)}
      message: ${p.message}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: { name: ${p.name} }
spec:
  policyName: ${p.name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: { kubernetes.io/metadata.name: ${p.namespace} }
`,
  );
}

/** Removes what applyDenyPolicy applied under `name`, if anything (for afterAll). */
export async function removeDenyPolicy(binDir: string, kubeconfig: string, name: string): Promise<void> {
  await kubectl(binDir, kubeconfig, [
    'delete',
    'validatingadmissionpolicybinding,validatingadmissionpolicy',
    name,
    '--ignore-not-found',
  ]);
}

/** Cluster-wide WATCH requests the apiserver currently serves for group/resource, from /metrics. */
function clusterWatches(metrics: string, group: string, resource: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    const m = /^apiserver_longrunning_requests\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const labels = new Map([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (
      labels.get('group') === group &&
      labels.get('resource') === resource &&
      labels.get('scope') === 'cluster' &&
      labels.get('verb') === 'WATCH'
    ) {
      total += Number(m[2]);
    }
  }
  return total;
}

/**
 * The garbage collector only learns about a CRD created after it started on its 30 s discovery
 * resync; a dependent created before that sits behind an exponentially backed-off retry (observed:
 * up to ~45 s). Waiting until the GC holds a cluster-wide watch on the owner's resource makes
 * ownerReference GC of custom objects prompt. Call it before anything else (e.g. the operator) watches
 * the same resource cluster-wide, or it returns too early.
 */
export async function waitForGarbageCollectorWatch(
  binDir: string,
  kubeconfig: string,
  target: { group: string; resource: string; timeoutMs?: number },
): Promise<void> {
  await waitFor(
    async () => {
      const r = await kubectl(binDir, kubeconfig, ['get', '--raw', '/metrics']);
      if (r.code !== 0) throw new Error(r.stderr);
      return clusterWatches(r.stdout, target.group, target.resource) > 0;
    },
    {
      description: `a cluster-wide watch on ${target.resource}.${target.group} (the garbage collector's)`,
      timeoutMs: target.timeoutMs ?? 60_000,
      intervalMs: 1_000,
    },
  );
}
