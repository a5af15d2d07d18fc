import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { crdObject } from '../../src/api/generate.js';
import { resources } from '../../src/api/schema.js';
import { REQUIRED_NODE_MAJOR } from '../../src/cli/node-version.js';
import { buildOperator } from '../harness/build.js';
import { runTool, type ToolResult } from '../harness/exec.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';

// The CLI as users run it (a child process), checked against the real apiserver: what `validate`
// rejects the server rejects too (CEL rules: with the same message at the same field), every file
// in examples/ passes both, what `import` prints the server accepts, and on an old Node.js the
// executable says what it needs.

const root = resolve(import.meta.dirname, '../..');
const fixture = join(root, 'test/fixtures/iam-client.json');
const CRDS = ['oidcclients', 'oidcproviders', 'clusteroidcproviders'].map(
  (p) => `${p}.oidc.dcr-operator.dev`,
);

/** The compiled executable (built in beforeAll), as the package's bin and the image run it. */
function cli(args: string[]): Promise<ToolResult> {
  return runTool(process.execPath, [join(root, 'dist/cli/entry.js'), ...args], {
    cwd: root,
    timeoutMs: 60_000,
  });
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
  {
    // Lists are bounded so the apiserver can bound the cost of the CEL rules on their items.
    name: 'maxItems',
    yaml: `${CLIENT}  redirectUris: [${Array.from({ length: 65 }, (_, i) => `https://a.example.org/${i}`).join(', ')}]\n`,
    path: '/spec/redirectUris',
    serverSays: /spec\.redirectUris: Too many: 65: must have at most 64 items/,
  },
];

const provider = (kind: 'OidcProvider' | 'ClusterOidcProvider', spec: string) =>
  `apiVersion: oidc.dcr-operator.dev/v1alpha1\nkind: ${kind}\nmetadata:\n  name: shared\nspec:\n  issuerUrl: https://iam.example.org/\n${spec}`;

/**
 * The CRD's CEL rules (src/api/rules.ts): `kubectl apply` refuses each object with exactly the
 * message `validate` prints, at the same field (JSON pointer for validate, dotted for the server).
 */
const CEL_MISTAKES: { name: string; yaml: string; where: string; path: string; message: string }[] = [
  {
    name: 'Secret names collide (both set)',
    yaml: `${CLIENT}  secretName: creds\n  managementSecretName: creds\n`,
    where: 'OidcClient/web',
    path: '/spec/managementSecretName',
    message: 'the application Secret and the management Secret must have different names',
  },
  {
    name: "Secret names collide (secretName = the management Secret's default name)",
    yaml: `${CLIENT}  secretName: web-oidc-registration\n`,
    where: 'OidcClient/web',
    path: '/spec/secretName',
    message: 'the application Secret and the management Secret must have different names',
  },
  {
    name: 'default Secret name too long',
    yaml: CLIENT.replace('name: web', `name: ${'w'.repeat(236)}`),
    where: `OidcClient/${'w'.repeat(236)}`,
    path: '/spec/managementSecretName',
    message:
      'metadata.name is longer than 235 characters, so the default management Secret name <name>-oidc-registration would exceed 253: set spec.managementSecretName',
  },
  {
    name: 'refreshInterval beyond what a duration can hold',
    yaml: `${CLIENT}  refreshInterval: 9999999h\n`,
    where: 'OidcClient/web',
    path: '/spec/refreshInterval',
    message: 'must be "0" (no periodic drift checks) or between 1s and 168h',
  },
  {
    name: 'extraMetadata repeats a standard field',
    yaml: `${CLIENT}  extraMetadata:\n    client_name: Web\n`,
    where: 'OidcClient/web',
    path: '/spec/extraMetadata/client_name',
    message: 'repeats a standard field: set spec.clientName instead',
  },
  {
    name: 'extraMetadata sets what the provider issues',
    yaml: `${CLIENT}  extraMetadata:\n    client_secret: never-printed\n`,
    where: 'OidcClient/web',
    path: '/spec/extraMetadata/client_secret',
    message: 'is issued by the provider and cannot be set by the client',
  },
  {
    name: 'provider reference is no object name',
    yaml: CLIENT.replace('name: iam', 'name: IAM_Prod'),
    where: 'OidcClient/web',
    path: '/spec/providerRef/name',
    message:
      'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters',
  },
  {
    name: 'relative redirect URI',
    yaml: `${CLIENT}  redirectUris: [/callback]\n`,
    where: 'OidcClient/web',
    path: '/spec/redirectUris/0',
    message:
      'must be an absolute URI (scheme:rest, printable ASCII without spaces; http and https need a host)',
  },
  {
    name: 'redirect URI with a fragment',
    yaml: `${CLIENT}  redirectUris: ["https://app.example.org/cb#x"]\n`,
    where: 'OidcClient/web',
    path: '/spec/redirectUris/0',
    message: 'must not contain a fragment (#)',
  },
  {
    name: 'https URL without a host',
    yaml: `${CLIENT}  jwksUri: "https:/jwks.json"\n`,
    where: 'OidcClient/web',
    path: '/spec/jwksUri',
    message:
      'must be an absolute URI (scheme:rest, printable ASCII without spaces; http and https need a host)',
  },
  {
    name: 'rotation schedule shorter than the overlap',
    yaml: `${CLIENT}  rotation: { every: 1h, overlap: 2h }\n`,
    where: 'OidcClient/web',
    path: '/spec/rotation/every',
    message: 'must be longer than the overlap (2h)',
  },
  {
    name: 'rotation schedule within the default overlap',
    yaml: `${CLIENT}  rotation: { every: 5m }\n`,
    where: 'OidcClient/web',
    path: '/spec/rotation/every',
    message: 'must be longer than the overlap (10m, the default)',
  },
  {
    // Days, which CEL's duration() cannot read: one day is not longer than 24h.
    name: 'rotation schedule in days, equal to the overlap',
    yaml: `${CLIENT}  rotation: { every: 1d, overlap: 24h }\n`,
    where: 'OidcClient/web',
    path: '/spec/rotation/every',
    message: 'must be longer than the overlap (24h)',
  },
  {
    name: 'issuer is not http(s)',
    yaml: provider('OidcProvider', '').replace('https://iam.example.org/', 'ftp://iam.example.org/'),
    where: 'OidcProvider/shared',
    path: '/spec/issuerUrl',
    message:
      'must be an http or https URL with a host: http(s)://host[:port][/path], printable ASCII without spaces',
  },
  {
    name: 'management origin with a path',
    yaml: provider('OidcProvider', '  managementOrigins: [https://admin.example.org/iam]\n'),
    where: 'OidcProvider/shared',
    path: '/spec/managementOrigins/0',
    message: 'must be an origin only: scheme://host[:port], no path, query or user',
  },
  {
    name: 'http management origin next to an https provider',
    yaml: provider('ClusterOidcProvider', '  managementOrigins: [http://admin.example.org]\n'),
    where: 'ClusterOidcProvider/shared',
    path: '/spec/managementOrigins',
    message:
      'http origins are refused: the provider uses https, and the registration access token must not travel in clear',
  },
  {
    name: 'cluster provider Secret without a namespace',
    yaml: provider('ClusterOidcProvider', '  caSecretRef: { name: iam-ca }\n'),
    where: 'ClusterOidcProvider/shared',
    path: '/spec/caSecretRef/namespace',
    message: 'is required for a ClusterOidcProvider',
  },
  {
    name: 'Secret namespace is no namespace name',
    yaml: provider('ClusterOidcProvider', '  initialAccessTokenSecretRef: { name: t, namespace: Team_A }\n'),
    where: 'ClusterOidcProvider/shared',
    path: '/spec/initialAccessTokenSecretRef/namespace',
    message:
      'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  },
  {
    name: 'empty condition',
    yaml: provider('ClusterOidcProvider', '  conditions: [{}]\n'),
    where: 'ClusterOidcProvider/shared',
    path: '/spec/conditions/0',
    message: 'a condition needs namespaces or a namespaceSelector',
  },
  {
    name: 'In without values',
    yaml: provider(
      'ClusterOidcProvider',
      '  conditions: [{ namespaceSelector: { matchExpressions: [{ key: tier, operator: In }] } }]\n',
    ),
    where: 'ClusterOidcProvider/shared',
    path: '/spec/conditions/0/namespaceSelector/matchExpressions/0',
    message: 'In and NotIn need at least one value; Exists and DoesNotExist take no values',
  },
];

/** JSON pointer → the apiserver's field path: /spec/redirectUris/0 → spec.redirectUris[0]. */
const serverPath = (pointer: string): string =>
  pointer
    .slice(1)
    .split('/')
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
    await buildOperator();
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

  it('every file in examples/ passes validate and a server-side dry run', async () => {
    // validate walks the folder recursively (examples/flux holds Flux objects, which it skips and
    // test/e2e/gitops-flux.test.ts applies); the server dry run covers the operator's own examples.
    const all = (await readdir(join(root, 'examples'), { recursive: true }))
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    const files = all.filter((f) => !f.includes('/'));
    expect(files).toEqual(
      expect.arrayContaining(['cluster-provider-shared.yaml', 'provider-private-ca-and-token.yaml']),
    );
    const result = await cli(['validate', 'examples']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^${all.length} files, \\d+ documents: \\d+ validated, \\d+ skipped, no issues\n$`),
    );

    for (const file of files) {
      // Namespaced objects land in the test namespace: the examples' own (oidc-client-operator) may
      // not exist here, and other test files create and delete it.
      const docs = Array.from(
        parseAllDocuments(await readFile(join(root, 'examples', file), 'utf8')),
        (d) => {
          const obj = d.toJS() as { metadata?: { namespace?: string } };
          if (obj.metadata?.namespace) obj.metadata.namespace = ns.name;
          return stringify(obj);
        },
      );
      const applied = await serverDryRun(docs.join('---\n'));
      expect(applied.code, `${file}: ${applied.stderr}`).toBe(0);
      expect(applied.stdout.match(/\(server dry run\)/g)).toHaveLength(docs.length);
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

  it('kubectl apply refuses each CEL mistake with the message validate prints, at the same field', async () => {
    const files = await Promise.all(
      CEL_MISTAKES.map(async (m, i) => {
        const file = join(scratch, `cel-${i}.yaml`);
        await writeFile(file, m.yaml);
        return file;
      }),
    );
    // One validate run for the whole table (each start of the CLI costs a second or two).
    const result = await cli(['validate', '--quiet', ...files]);
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    expect(result.stdout).not.toContain('never-printed');
    for (const [i, m] of CEL_MISTAKES.entries()) {
      // Exactly this issue and no other for the file: the table isolates one rule per object.
      expect(
        lines.filter((l) => l.startsWith(`${files[i]}:`)),
        m.name,
      ).toEqual([`${files[i]}:0: ${m.where}: ${m.path}: ${m.message}`]);

      const applied = await kubectl(binDir, kubeconfigPath, ['apply', '-f', files[i] as string], {
        namespace: ns.name,
      });
      expect(applied.code, `${m.name} was accepted by the apiserver`).not.toBe(0);
      const said = new RegExp(
        `${escapeRegExp(serverPath(m.path))}: (Invalid|Required) value: (".*": )?${escapeRegExp(m.message)}`,
      );
      expect(applied.stderr, m.name).toMatch(said);
      expect(applied.stderr).not.toContain('never-printed');
    }
  });

  it("the CEL rules fit the apiserver's cost budget because lists and strings are bounded", async () => {
    const unbounded = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(unbounded);
      if (typeof node !== 'object' || node === null) return node;
      return Object.fromEntries(
        Object.entries(node)
          .filter(([k]) => !['maxItems', 'maxLength', 'maxProperties'].includes(k))
          .map(([k, v]) => [k, unbounded(v)]),
      );
    };
    for (const def of resources) {
      const crd = crdObject(def);
      const bounded = await kubectl(
        binDir,
        kubeconfigPath,
        // --force-conflicts: helm may own the installed CRDs (install.test.ts); a dry run changes nothing.
        ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
        {
          input: stringify(crd),
        },
      );
      expect(bounded.code, `${def.kind}: ${bounded.stderr}`).toBe(0);
      const refused = await kubectl(
        binDir,
        kubeconfigPath,
        // --force-conflicts: helm may own the installed CRDs (install.test.ts); a dry run changes nothing.
        ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
        {
          input: stringify(unbounded(crd)),
        },
      );
      expect(refused.code, def.kind).not.toBe(0);
      expect(refused.stderr, def.kind).toMatch(/estimated rule cost (total .*)?exceeds budget/);
    }
  });

  it('the transition rule (providerRef immutable) runs on the server only; validate says so in --help', async () => {
    const name = 'immutable';
    const first = CLIENT.replace('name: web', `name: ${name}`);
    const created = await kubectl(binDir, kubeconfigPath, ['apply', '-f', '-'], {
      input: first,
      namespace: ns.name,
    });
    expect(created.code, created.stderr).toBe(0);
    const moved = first.replace('    name: iam\n', '    name: other\n');
    const file = join(scratch, 'moved.yaml');
    await writeFile(file, moved);
    const refused = await kubectl(binDir, kubeconfigPath, ['apply', '-f', file], { namespace: ns.name });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /spec\.providerRef: Invalid value: .*providerRef is immutable: create a new OidcClient to move to another provider/,
    );
    const offline = await cli(['validate', file]);
    expect(offline.code, offline.stdout).toBe(0);
    expect((await cli(['validate', '--help'])).stdout).toContain('run only on the server');
  });

  it(`on Node.js older than ${REQUIRED_NODE_MAJOR} the executable says what it needs, without a stack trace`, async () => {
    const entry = join(root, 'dist/cli/entry.js');
    const expectRefusal = (r: ToolResult, version: string) => {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        new RegExp(
          `^oidc-client-operator needs Node\\.js ${REQUIRED_NODE_MAJOR} or newer; this is Node\\.js ${escapeRegExp(version)}\\.\n`,
        ),
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
    };
    // A fake old version on this Node: process.versions.node rewritten before the entry loads.
    const fake = await runTool(
      process.execPath,
      [
        '--import',
        'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"22.11.0"})',
        entry,
        'run',
      ],
      { timeoutMs: 30_000 },
    );
    expectRefusal(fake, '22.11.0');
    // The real thing where the machine has an older node (the dev machines' /usr/bin/node is 20).
    const system = '/usr/bin/node';
    const systemVersion = await access(system).then(
      () => runTool(system, ['--version']).then((r) => r.stdout.trim().replace(/^v/, '')),
      () => undefined,
    );
    if (systemVersion && Number(systemVersion.split('.')[0]) < REQUIRED_NODE_MAJOR) {
      expectRefusal(await runTool(system, [entry, 'run', '--help'], { timeoutMs: 30_000 }), systemVersion);
    }
    // And the same entry on this Node runs the CLI.
    const ok = await runTool(process.execPath, [entry, 'version'], { timeoutMs: 30_000 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^oidc-client-operator \d+\.\d+\.\d+/);
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
