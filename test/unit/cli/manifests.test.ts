import { describe, expect, it } from 'vitest';
import { checkManifestText } from '../../../src/cli/manifests.js';

const CLIENT = `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: web
spec:
  providerRef:
    name: iam
`;

describe('checkManifestText', () => {
  it('validates our documents, skips the others and counts both', () => {
    const text = `# leading comment
apiVersion: v1
kind: ConfigMap
metadata: { name: cm }
---
${CLIENT}---
replicaCount: 2
---
`;
    expect(checkManifestText(text)).toEqual({ documents: 3, validated: 1, skipped: 2, issues: [] });
  });

  it('reports document index, kind, name, path and line of each issue', () => {
    const text = `${CLIENT}---
${CLIENT.replace('name: web', 'name: api')}  redirectUris:
    - https://api.example.org/cb
  tokenEndpointAuthMethod: basic
  grantTypes: [refresh_token, refresh_token]
`;
    const report = checkManifestText(text);
    expect(report).toMatchObject({ documents: 2, validated: 2, skipped: 0 });
    expect(report.issues).toEqual([
      {
        document: 1,
        kind: 'OidcClient',
        name: 'api',
        path: '/spec/grantTypes/1',
        message: 'duplicate of item 0 (the list is a set)',
        line: 19,
      },
      {
        document: 1,
        kind: 'OidcClient',
        name: 'api',
        path: '/spec/tokenEndpointAuthMethod',
        message: expect.stringMatching(/^must be one of: client_secret_basic/),
        line: 18,
      },
    ]);
  });

  it('points a missing field at its parent line', () => {
    const text = `${CLIENT.replace('    name: iam\n', '    kind: OidcProvider\n')}`;
    expect(checkManifestText(text).issues).toEqual([
      expect.objectContaining({ path: '/spec/providerRef/name', message: 'is required', line: 6 }),
    ]);
  });

  it('reports YAML syntax errors with their line and goes on with the next document', () => {
    const text = `${CLIENT}---
apiVersion: v1
kind: Secret
stringData:
  password: [s3cr3t-value
---
${CLIENT.replace('name: iam', 'name: IAM')}`;
    const report = checkManifestText(text);
    expect(report.documents).toBe(3);
    expect(report.validated).toBe(2);
    const [syntax, semantic] = report.issues;
    expect(syntax).toMatchObject({ document: 1, path: '', line: expect.any(Number) });
    expect(syntax?.message).toMatch(/^syntax error: .* at line \d+, column \d+$/);
    // The offending source line is not quoted: it may hold a secret.
    expect(syntax?.message).not.toContain('s3cr3t');
    expect(semantic).toMatchObject({ document: 2, path: '/spec/providerRef/name' });
  });

  it('reports duplicate keys as a syntax error, as kubectl does', () => {
    const report = checkManifestText(`${CLIENT}spec: {}\n`);
    expect(report.issues).toEqual([expect.objectContaining({ document: 0, path: '' })]);
    expect(report.issues[0]?.message).toMatch(/unique/);
  });

  it('validates the items of a v1 List with their path', () => {
    const text = `apiVersion: v1
kind: List
items:
  - apiVersion: oidc.dcr-operator.dev/v1alpha1
    kind: OidcProvider
    metadata: { name: iam }
    spec: { issuerUrl: "https://iam.example.org/" }
  - apiVersion: oidc.dcr-operator.dev/v1alpha1
    kind: OidcClient
    metadata: { name: web }
    spec: { providerRef: {}, bogus: 1 }
  - apiVersion: v1
    kind: Secret
`;
    const report = checkManifestText(text);
    expect(report).toMatchObject({ documents: 1, validated: 2, skipped: 1 });
    expect(report.issues.map((i) => [i.path, i.name, i.line])).toEqual([
      ['/items/1/spec/bogus', 'web', 11],
      ['/items/1/spec/providerRef/name', 'web', 11],
    ]);
  });

  it('parses JSON files and hides their content in syntax errors', () => {
    const json = JSON.stringify({
      apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
      kind: 'OidcProvider',
      metadata: { name: 'iam' },
      spec: {},
    });
    expect(checkManifestText(json, { json: true }).issues).toEqual([
      expect.objectContaining({ document: 0, kind: 'OidcProvider', name: 'iam', path: '/spec/issuerUrl' }),
    ]);
    const broken = checkManifestText('{\n  "token": "s3cr3t-value" oops\n}', { json: true });
    expect(broken.issues).toEqual([
      { document: 0, path: '', message: 'syntax error: invalid JSON at line 2, column 27', line: 2 },
    ]);
  });

  it('handles an empty file and an object without a name', () => {
    expect(checkManifestText('')).toEqual({ documents: 0, validated: 0, skipped: 0, issues: [] });
    const report = checkManifestText('apiVersion: oidc.dcr-operator.dev/v1alpha1\nkind: OidcClient\n');
    expect(report.issues).toEqual([
      { document: 0, kind: 'OidcClient', name: undefined, path: '/spec', message: 'is required', line: 1 },
    ]);
  });
});
