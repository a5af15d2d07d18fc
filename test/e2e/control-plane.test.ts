import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  helm,
  isApiError,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
  waitForGarbageCollectorWatch,
} from '../harness/kube.js';

// Smoke test of the harness itself: if this file fails, every other e2e failure is suspect.

const GROUP = 'smoke.test.io';
const VERSION = 'v1';
const PLURAL = 'widgets';
const CRD_NAME = `${PLURAL}.${GROUP}`;
const KUBE_VERSION = 'v1.37.2';
const HELM_VERSION_PATTERN = /^v4\.3(\.1)?\b/;

const CRD_YAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${CRD_NAME}
spec:
  group: ${GROUP}
  scope: Namespaced
  names: { plural: ${PLURAL}, singular: widget, kind: Widget, listKind: WidgetList }
  versions:
    - name: ${VERSION}
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer, minimum: 1 }
                color: { type: string }
            status:
              type: object
              properties:
                ready: { type: boolean }
`;

function widgetYaml(name: string, size: number): string {
  return `apiVersion: ${GROUP}/${VERSION}
kind: Widget
metadata:
  name: ${name}
spec:
  size: ${size}
  color: blue
`;
}

/** Reads a nested field of an untyped API object (custom objects come back as `any`). */
function field(obj: unknown, ...path: string[]): unknown {
  let current: unknown = obj;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

describe('control plane harness', () => {
  const kubeconfigPath = inject('kubeconfigPath');
  const binDir = inject('binDir');
  let kc: KubeConfig;
  let ns: TestNamespace;
  let scratch: string;

  beforeAll(async () => {
    kc = kubeConfigFromFile(kubeconfigPath);
    ns = await createTestNamespace(kc, 'smoke');
    // Inside the control plane's dir, so it goes with the control plane even if afterAll never runs.
    scratch = await mkdtemp(join(dirname(kubeconfigPath), 'smoke-'));
  });

  afterAll(async () => {
    await ns?.cleanup();
    await kubectl(binDir, kubeconfigPath, ['delete', 'crd', CRD_NAME, '--ignore-not-found', '--wait=false']);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('kubectl and helm are the built versions and reach the apiserver', async () => {
    const version = await kubectl(binDir, kubeconfigPath, ['version', '-o', 'json']);
    expect(version.code, version.stderr).toBe(0);
    const parsed: unknown = JSON.parse(version.stdout);
    expect(field(parsed, 'clientVersion', 'gitVersion')).toBe(KUBE_VERSION);
    expect(field(parsed, 'serverVersion', 'gitVersion')).toBe(KUBE_VERSION);

    const helmVersion = await helm(binDir, kubeconfigPath, ['version', '--short']);
    expect(helmVersion.code, helmVersion.stderr).toBe(0);
    // build-k8s.sh does not stamp helm's patch version (-X helm.sh/helm/v4/internal/version.version),
    // so the binary reports the source default "v4.3" rather than "v4.3.1".
    expect(helmVersion.stdout.trim()).toMatch(HELM_VERSION_PATTERN);
    // Other test files install releases concurrently: look only at this file's own namespace.
    const releases = await helm(binDir, kubeconfigPath, ['list', '--namespace', ns.name, '-o', 'json']);
    expect(releases.code, releases.stderr).toBe(0);
    expect(JSON.parse(releases.stdout)).toEqual([]);
  });

  it('installs a CRD with kubectl apply -f and serves its objects to client-node', async () => {
    const crdFile = join(scratch, 'crd.yaml');
    await writeFile(crdFile, CRD_YAML);
    const applied = await kubectl(binDir, kubeconfigPath, ['apply', '-f', crdFile]);
    expect(applied.code, applied.stderr).toBe(0);

    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await waitFor(
      async () => {
        const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { description: `CRD ${CRD_NAME} Established`, timeoutMs: 30_000 },
    );

    const widgetFile = join(scratch, 'widget.yaml');
    await writeFile(widgetFile, widgetYaml('w1', 3));
    // Right after Established, kubectl's discovery cache may not know the kind yet: retry briefly.
    await waitFor(
      async () => {
        const r = await kubectl(binDir, kubeconfigPath, ['apply', '-f', widgetFile], { namespace: ns.name });
        if (r.code !== 0) throw new Error(r.stderr);
        return r.stdout.includes('widget.smoke.test.io/w1');
      },
      { description: 'kubectl apply of Widget w1', timeoutMs: 30_000, intervalMs: 500 },
    );

    const custom = kc.makeApiClient(CustomObjectsApi);
    const widget: unknown = await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: PLURAL,
      name: 'w1',
    });
    expect(field(widget, 'spec')).toEqual({ size: 3, color: 'blue' });

    // The status subresource is separate from the main resource: prove it is wired.
    const patched = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'widget', 'w1', '--subresource=status', '--type=merge', '-p', '{"status":{"ready":true}}'],
      { namespace: ns.name },
    );
    expect(patched.code, patched.stderr).toBe(0);
    const afterPatch: unknown = await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: PLURAL,
      name: 'w1',
    });
    expect(field(afterPatch, 'status', 'ready')).toBe(true);
  });

  // Runs before the GC test so its ~5 s (the namespace controller waits 5 s before deleting) overlap
  // with the GC test's wait for the GC's 30 s discovery resync instead of adding to it.
  it('kubectl delete namespace completes, contents included', async () => {
    const doomed = await createTestNamespace(kc, 'smoke-delete');
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `${widgetYaml('inside', 2)}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\ndata:\n  k: v\n`,
      doomed.name,
    );
    const deleted = await kubectl(binDir, kubeconfigPath, [
      'delete',
      'namespace',
      doomed.name,
      '--timeout=90s',
    ]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.readNamespace({ name: doomed.name })).rejects.toSatisfy((e) => isApiError(e, 404));
  });

  it('garbage-collects a ConfigMap owned by a deleted Widget', async () => {
    // Up to 30 s: the GC starts watching a new CRD's objects on its next discovery resync.
    await waitForGarbageCollectorWatch(binDir, kubeconfigPath, { group: GROUP, resource: PLURAL });
    await kubectlApply(binDir, kubeconfigPath, widgetYaml('owner', 1), ns.name);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const owner: unknown = await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: PLURAL,
      name: 'owner',
    });
    const uid = field(owner, 'metadata', 'uid');
    expect(typeof uid).toBe('string');

    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: {
          name: 'owned',
          ownerReferences: [
            { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', name: 'owner', uid: String(uid) },
          ],
        },
        data: { k: 'v' },
      },
    });

    const deleted = await kubectl(binDir, kubeconfigPath, ['delete', 'widget', 'owner'], {
      namespace: ns.name,
    });
    expect(deleted.code, deleted.stderr).toBe(0);
    await waitFor(
      async () => {
        try {
          await core.readNamespacedConfigMap({ namespace: ns.name, name: 'owned' });
          return false;
        } catch (error) {
          if (isApiError(error, 404)) return true;
          throw error;
        }
      },
      { description: 'ConfigMap owned to be garbage-collected', timeoutMs: 30_000, intervalMs: 250 },
    );
  });
});
