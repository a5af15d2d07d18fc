import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runTool, type ToolResult } from '../harness/exec.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';

// The CLI as users run it (a child process), checked against the real apiserver: what `validate`
// rejects the server rejects too, and what `import` prints the server accepts.

const root = resolve(import.meta.dirname, '../..');
const fixture = join(root, 'test/fixtures/iam-client.json');
const CRDS = ['oidcclients', 'oidcproviders', 'clusteroidcproviders'].map(
  (p) => `${p}.oidc.dcr-operator.dev`,
);

function cli(args: string[]): Promise<ToolResult> {
  return runTool('npx', ['tsx', 'src/cli/main.ts', ...args], { cwd: root, timeoutMs: 60_000 });
}

const CLIENT = `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: web
spec:
  providerRef:
    name: iam
`;

/** Mistakes the structural schema catches: each must fail both `validate` and the apiserver. */
const STRUCTURAL_MISTAKES: { name: string; yaml: string; path: string; serverSays: RegExp }[] = [
  {
    name: 'enum',
    yaml: `${CLIENT}  deletionPolicy: Keep\n`,
    path: '/spec/deletionPolicy',
    serverSays: /spec\.deletionPolicy: Unsupported value: "Keep"/,
  },
  {
    name: 'unknown field',
    yaml: `${CLIENT}  redirectURIs: [https://app.example.org/cb]\n`,
    path: '/spec/redirectURIs',
    serverSays: /unknown field "spec\.redirectURIs"/,
  },
  {
    name: 'duplicate in a set',
    yaml: `${CLIENT}  grantTypes: [authorization_code, authorization_code]\n`,
    path: '/spec/grantTypes/1',
    serverSays: /spec\.grantTypes\[1\]: Duplicate value/,
  },
  {
    name: 'pattern',
    yaml: `${CLIENT}  scopes: ["openid email"]\n`,
    path: '/spec/scopes/0',
    serverSays: /spec\.scopes\[0\]: Invalid value/,
  },
  {
    name: 'required',
    yaml: CLIENT.replace('    name: iam\n', '    kind: OidcProvider\n'),
    path: '/spec/providerRef/name',
    serverSays: /spec\.providerRef\.name: Required value/,
  },
];

describe('oidc-client-operator CLI', () => {
  const kubeconfigPath = inject('kubeconfigPath');
  const binDir = inject('binDir');
  let ns: TestNamespace;
  let scratch: string;

  const serverDryRun = (yamlText: string): Promise<ToolResult> =>
    kubectl(binDir, kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], {
      input: yamlText,
      namespace: ns.name,
    });

  beforeAll(async () => {
    ns = await createTestNamespace(kubeConfigFromFile(kubeconfigPath), 'cli');
    scratch = await mkdtemp(join(dirname(kubeconfigPath), 'cli-'));
    // Other test files may apply the same CRDs: server-side apply with --force-conflicts is idempotent.
    const applied = await kubectl(binDir, kubeconfigPath, [
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      join(root, 'crds'),
    ]);
    expect(applied.code, applied.stderr).toBe(0);
    const established = await kubectl(binDir, kubeconfigPath, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...CRDS.map((c) => `crd/${c}`),
    ]);
    expect(established.code, established.stderr).toBe(0);
    // Right after Established, kubectl's discovery may not know the kinds yet.
    await waitFor(
      async () => {
        const r = await serverDryRun(CLIENT);
        if (r.code !== 0) throw new Error(r.stderr);
        return true;
      },
      { description: 'kubectl to know OidcClient', timeoutMs: 30_000, intervalMs: 500 },
    );
  });

  afterAll(async () => {
    await ns?.cleanup();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('validate accepts the examples, and so does the apiserver', async () => {
    const result = await cli(['validate', 'examples']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // One document per example file.
    const files = (await readdir(join(root, 'examples'))).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(7);
    const n = files.length;
    expect(result.stdout).toBe(`${n} files, ${n} documents: ${n} validated, 0 skipped, no issues\n`);

    for (const file of files) {
      const applied = await serverDryRun(await readFile(join(root, 'examples', file), 'utf8'));
      expect(applied.code, `${file}: ${applied.stderr}`).toBe(0);
      expect(applied.stdout).toContain('(server dry run)');
    }
  });

  it('validate reports file, document index and field path; exit 1 on issues, 2 on usage errors', async () => {
    const file = join(scratch, 'bad.yaml');
    const docs = [
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n',
      ...STRUCTURAL_MISTAKES.map((m) => m.yaml),
      'apiVersion: v1\nkind: Secret\nstringData:\n  token: [never-printed\n',
    ];
    await writeFile(file, docs.join('---\n'));
    const result = await cli(['validate', file]);
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    STRUCTURAL_MISTAKES.forEach((m, i) => {
      const prefix = `${file}:${i + 1}: OidcClient/web: ${m.path}: `;
      expect(
        lines.filter((l) => l.startsWith(prefix)),
        prefix,
      ).toHaveLength(1);
    });
    const last = docs.length - 1;
    const syntax = lines.filter((l) => l.startsWith(`${file}:${last}: syntax error: `));
    expect(syntax).toHaveLength(1);
    expect(syntax[0]).toMatch(/ at line \d+, column \d+$/);
    expect(result.stdout).not.toContain('never-printed');
    expect(lines.at(-1)).toBe(
      `1 file, ${docs.length} documents: ${STRUCTURAL_MISTAKES.length} validated, 1 skipped, ` +
        `${STRUCTURAL_MISTAKES.length + 1} issues`,
    );

    const usage = await cli(['validate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('validate needs at least one FILE or DIR');
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command: frobnicate');
  });

  it('the apiserver rejects what validate rejects, on the same field', async () => {
    for (const mistake of STRUCTURAL_MISTAKES) {
      const applied = await serverDryRun(mistake.yaml);
      expect(applied.code, `${mistake.name} was accepted by the apiserver`).not.toBe(0);
      expect(applied.stderr, mistake.name).toMatch(mistake.serverSays);
    }
  });

  it('validate repeats the CRD CEL rules offline: both refuse the same objects', async () => {
    const cluster = (spec: string) =>
      `apiVersion: oidc.dcr-operator.dev/v1alpha1\nkind: ClusterOidcProvider\nmetadata:\n  name: shared\nspec:\n  issuerUrl: https://iam.example.org/\n${spec}`;
    const cases = [
      {
        yaml: cluster('  conditions: [{}]\n'),
        where: 'ClusterOidcProvider/shared: /spec/conditions/0',
        serverSays: /a condition needs namespaces or a namespaceSelector/,
      },
      {
        yaml: cluster(
          '  conditions: [{ namespaceSelector: { matchExpressions: [{ key: tier, operator: In }] } }]\n',
        ),
        where: 'ClusterOidcProvider/shared: /spec/conditions/0/namespaceSelector',
        serverSays: /In and NotIn need at least one value/,
      },
      {
        yaml: CLIENT.replace('name: web', `name: ${'w'.repeat(236)}`),
        where: `OidcClient/${'w'.repeat(236)}: /spec/managementSecretName`,
        serverSays: /metadata\.name is longer than 235 characters/,
      },
    ];
    for (const c of cases) {
      const file = join(scratch, 'cel.yaml');
      await writeFile(file, c.yaml);
      const result = await cli(['validate', file]);
      expect(result.code, result.stdout).toBe(1);
      expect(result.stdout).toContain(`${file}:0: ${c.where}: `);
      const applied = await serverDryRun(c.yaml);
      expect(applied.code, `${c.where} was accepted by the apiserver`).not.toBe(0);
      expect(applied.stderr).toMatch(c.serverSays);
    }
  });

  it('import turns the IAM client JSON into manifests the apiserver accepts', async () => {
    const result = await cli(['import', '--from', fixture, '--name', 'grafana', '--namespace', ns.name]);
    expect(result.code, result.stderr).toBe(0);

    // Secret values reach stdout (the Secret the user asked for) but never stderr.
    const client = JSON.parse(await readFile(fixture, 'utf8')) as Record<string, unknown>;
    for (const key of ['client_secret', 'registration_access_token']) {
      const value = String(client[key]);
      expect(result.stdout).toContain(value);
      expect(result.stderr).not.toContain(value);
    }
    expect(result.stderr).toContain('Secret grafana-oidc-adopt');

    const docs = Array.from(parseAllDocuments(result.stdout), (d) => d.toJS() as { kind: string });
    expect(docs.map((d) => d.kind)).toEqual(['Secret', 'OidcClient']);

    const applied = await serverDryRun(result.stdout);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('secret/grafana-oidc-adopt created (server dry run)');
    expect(applied.stdout).toContain('oidcclient.oidc.dcr-operator.dev/grafana created (server dry run)');

    const out = join(scratch, 'grafana.yaml');
    await writeFile(out, result.stdout);
    const validated = await cli(['validate', out]);
    expect(validated.code, validated.stdout).toBe(0);
    expect(validated.stdout).toBe('1 file, 2 documents: 1 validated, 1 skipped, no issues\n');
  });
});
