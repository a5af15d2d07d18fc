import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  kustomization,
  NAMESPACE,
  renderFiles,
  staleFiles,
  toPlainManifests,
} from '../../../scripts/render-manifests.js';

// Shaped like `helm template` output: leading `---`, a `# Source:` comment, blank lines between docs.
const HELM_OUTPUT = `---
# Source: chart/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: op
  labels:
    helm.sh/chart: chart-0.1.0
    app.kubernetes.io/name: op
    app.kubernetes.io/managed-by: Helm

---
# Source: chart/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: op
  labels:
    helm.sh/chart: chart-0.1.0
    app.kubernetes.io/managed-by: Helm
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: op
  template:
    metadata:
      labels:
        helm.sh/chart: chart-0.1.0
        app.kubernetes.io/name: op
        app.kubernetes.io/managed-by: Helm
    spec:
      containers:
        # kept comment
        - name: operator
          args: ["run", "--leader-elect=true"]
`;

function objects(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => d.toJS());
}

describe('toPlainManifests', () => {
  it('drops the Helm chart label and marks objects as managed by kustomize, everything else unchanged', () => {
    const plain = toPlainManifests(HELM_OUTPUT);
    const [sa, deployment] = objects(plain);
    expect(sa).toEqual({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: 'op',
        labels: { 'app.kubernetes.io/name': 'op', 'app.kubernetes.io/managed-by': 'kustomize' },
      },
    });
    expect(deployment).toMatchObject({
      metadata: { labels: { 'app.kubernetes.io/managed-by': 'kustomize' } },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'op' } },
        template: {
          metadata: {
            labels: { 'app.kubernetes.io/name': 'op', 'app.kubernetes.io/managed-by': 'kustomize' },
          },
          spec: { containers: [{ name: 'operator', args: ['run', '--leader-elect=true'] }] },
        },
      },
    });
    expect(plain).not.toContain('helm.sh/chart');
    expect(plain).not.toContain('Helm');
  });

  it('keeps comments and writes exactly one separator between documents', () => {
    const plain = toPlainManifests(HELM_OUTPUT);
    expect(plain).toContain('# Source: chart/templates/deployment.yaml');
    expect(plain).toContain('# kept comment');
    expect(plain.match(/^---$/gm)).toHaveLength(1);
    expect(plain.startsWith('---')).toBe(false);
  });

  it('rejects output that is not YAML instead of writing it', () => {
    expect(() => toPlainManifests('a: [unclosed\n')).toThrow(/invalid YAML/);
  });
});

describe('kustomization', () => {
  it('puts everything into the operator namespace and lists the CRDs sorted between Namespace and operator', () => {
    const [k] = objects(kustomization(['z.yaml', 'a.yaml']));
    expect(k).toEqual({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace: NAMESPACE,
      resources: ['namespace.yaml', 'crds/a.yaml', 'crds/z.yaml', 'operator.yaml'],
    });
  });
});

describe('staleFiles', () => {
  const files = renderFiles(HELM_OUTPUT, ['crd.yaml']);

  it('finds nothing when every file matches', () => {
    expect(staleFiles(files, new Map(files.map((f) => [f.path, f.content])))).toEqual([]);
  });

  it('reports changed and missing files', () => {
    const current = new Map<string, string | undefined>(files.map((f) => [f.path, f.content]));
    current.set('manifests/base/operator.yaml', 'edited by hand\n');
    current.set('manifests/base/namespace.yaml', undefined);
    expect(staleFiles(files, current)).toEqual([
      'manifests/base/namespace.yaml',
      'manifests/base/operator.yaml',
    ]);
  });
});
