// `npm run demo [-- --keep]`: the operator end to end on a laptop, in about 20 seconds. Starts a real
// kube-apiserver + etcd + kube-controller-manager, an INDIGO IAM-like registration server and the
// operator (as a child process, its log shown compactly), then registers examples/oidcclient-web.yaml
// with kubectl, shows the resulting Secret (secrets redacted), proves the credentials work at the
// token endpoint, updates the client and deletes it. Everything is torn down at the end, on error
// and on Ctrl-C; --keep leaves it running until Ctrl-C for exploring with kubectl.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, styleText } from 'node:util';
import { parse, stringify } from 'yaml';
import type { OidcClient } from '../src/api/types.generated.js';
import { runTool, type ToolResult } from '../test/harness/exec.js';
import { type LocalStack, startLocalStack } from '../test/harness/local-stack/index.js';
import { formatOperatorLog } from '../test/harness/local-stack/operator-child.js';
import { runWithTeardown, type Teardown } from '../test/harness/local-stack/teardown.js';
import type { RegistrationServer } from '../test/harness/registration-server/index.js';
import { waitFor } from '../test/harness/wait.js';

const USAGE = `usage: npm run demo [-- --keep | --gitops]

  --keep     leave the cluster, the registration server and the operator running until Ctrl-C
  --gitops   the Git-driven lifecycle: a Git server and Flux apply, change and prune OidcClients`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../examples/oidcclient-web.yaml', import.meta.url));
const NAMESPACE = 'demo';
const ADDED_REDIRECT = 'https://app.example.org/oauth2/callback-v2';
/** Application Secret keys that are not confidential; every other value is redacted. */
const PUBLIC_KEYS = new Set(['client_id', 'issuer', 'token_endpoint']);

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const dim = (text: string): string => styleText('dim', text);

interface DemoContext {
  stack: LocalStack;
  kubeconfig: string;
}

/** Runs the built kubectl from the repository root, printing the command line first. */
async function kubectl(ctx: DemoContext, args: string[], input?: string): Promise<ToolResult> {
  const shown = args.map((a) => (/[\s'"{}$]/.test(a) ? `'${a}'` : a)).join(' ');
  flushProviderRequests();
  out(styleText('cyan', `$ kubectl ${shown}${input === undefined ? '' : ' <<EOF ... EOF'}`));
  const r = await runTool(ctx.stack.kubectlPath, args, {
    cwd: ROOT,
    input,
    env: { KUBECONFIG: ctx.kubeconfig },
    timeoutMs: 90_000,
  });
  if (r.code !== 0)
    throw new Error(`kubectl ${shown} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

let stepNo = 0;
/** `kubectl apply` of the example OidcClient, then `kubectl wait` for its Ready condition. */
async function applyExampleAndWait(ctx: DemoContext, name: string): Promise<void> {
  await kubectl(ctx, ['-n', NAMESPACE, 'apply', '-f', relative(ROOT, EXAMPLE)]);
  await kubectl(ctx, [
    '-n',
    NAMESPACE,
    'wait',
    '--for=condition=Ready',
    `oidcclient/${name}`,
    '--timeout=60s',
  ]);
}

function step(title: string): void {
  stepNo += 1;
  flushProviderRequests();
  out(`\n${styleText('bold', `== ${stepNo}. ${title}`)}`);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  out(styleText('green', `  ✓ ${what}`));
}

/** Prints completed provider requests; called on a timer and before anything else is printed. */
let flushProviderRequests = (): void => {};

/** Shows the provider's requests as they complete, between the operator's log lines. */
function showProviderRequests(provider: RegistrationServer): () => void {
  let next = 0;
  flushProviderRequests = () => {
    for (let r = provider.requests[next]; r && r.status !== 0; r = provider.requests[++next]) {
      out(dim(`  provider │ ${r.method} ${r.path} → ${r.status}`));
    }
  };
  const timer = setInterval(flushProviderRequests, 100);
  return () => {
    clearInterval(timer);
    flushProviderRequests();
    flushProviderRequests = () => {};
  };
}

/** What the token endpoint says to a client_credentials request authenticated with these credentials. */
async function tokenEndpointAnswer(
  tokenEndpoint: string,
  clientId: string,
  secret: string,
): Promise<{ status: number; error?: string }> {
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString(
    'base64',
  );
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: 'grant_type=client_credentials',
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json().catch(() => ({}))) as { error?: unknown };
  return { status: res.status, ...(typeof body.error === 'string' ? { error: body.error } : {}) };
}

async function getClient(ctx: DemoContext, name: string): Promise<OidcClient> {
  const r = await runTool(ctx.stack.kubectlPath, ['-n', NAMESPACE, 'get', 'oidcclient', name, '-o', 'json'], {
    env: { KUBECONFIG: ctx.kubeconfig },
  });
  if (r.code !== 0) throw new Error(`reading OidcClient ${name}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as OidcClient;
}

async function secretValues(ctx: DemoContext, name: string): Promise<Record<string, string>> {
  const r = await kubectl(ctx, ['-n', NAMESPACE, 'get', 'secret', name, '-o', 'json']);
  const secret = JSON.parse(r.stdout) as { data?: Record<string, string> };
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

function providerYaml(provider: RegistrationServer): string {
  return stringify({
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcProvider',
    metadata: { name: 'iam' },
    spec: {
      issuerUrl: provider.issuer,
      registrationEndpoint: provider.registrationEndpoint,
      maxConcurrentRequests: 4,
    },
  });
}

async function demo(teardown: Teardown, keep: boolean): Promise<void> {
  const started = Date.now();
  const example = parse(await readFile(EXAMPLE, 'utf8')) as OidcClient;
  const name = example.metadata.name as string;

  // Registered first, so it runs last.
  teardown.add('final message', async () => out(dim('demo: everything stopped and removed')));
  step('Start a Kubernetes control plane, an IAM-like registration server and the operator');
  const stack = await startLocalStack({
    teardown,
    log: (line) => out(dim(line)),
    operatorArgs: [
      '--health-port',
      '0',
      '--resync-interval',
      '10m',
      '--deletion-timeout',
      '30s',
      '--provider-timeout',
      '5s',
    ],
    onOperatorLog: (entry) => out(`  operator │ ${formatOperatorLog(entry)}`),
  });
  const ctx: DemoContext = { stack, kubeconfig: stack.controlPlane.kubeconfigPath };
  const stopRequestLog = showProviderRequests(stack.provider);
  teardown.add('provider request log', async () => stopRequestLog());
  out(`  ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  step('Point an OidcProvider at the local registration server');
  await kubectl(ctx, ['create', 'namespace', NAMESPACE]);
  const provider = providerYaml(stack.provider);
  out(indent(provider));
  await kubectl(ctx, ['-n', NAMESPACE, 'apply', '-f', '-'], provider);

  step(`Register the example client (${relative(ROOT, EXAMPLE)})`);
  await applyExampleAndWait(ctx, name);
  out(indent((await kubectl(ctx, ['-n', NAMESPACE, 'get', 'oidcclients', '-o', 'wide'])).stdout));
  const cr = await getClient(ctx, name);
  const clientId = cr.status?.clientId;
  if (!clientId) throw new Error(`OidcClient ${name} is Ready but has no status.clientId`);

  step('The application Secret (values redacted except client_id, issuer and token_endpoint)');
  const appSecretName = cr.status?.secretName ?? `${name}-oidc-client`;
  const app = await secretValues(ctx, appSecretName);
  for (const [key, value] of Object.entries(app).sort(([a], [b]) => a.localeCompare(b))) {
    const shown = PUBLIC_KEYS.has(key) ? value : `<redacted, ${Buffer.byteLength(value)} bytes>`;
    out(`    ${key.padEnd(16)} ${shown}`);
  }
  check(app.client_id === clientId, 'client_id matches status.clientId');
  check(Boolean(app.client_secret), 'client_secret is set');
  check(app.issuer === stack.provider.issuer, 'issuer is the local registration server');
  const mgmtName = cr.status?.managementSecretName ?? `${name}-oidc-registration`;
  const mgmt = await runTool(
    stack.kubectlPath,
    ['-n', NAMESPACE, 'get', 'secret', mgmtName, '-o', 'go-template={{range $k, $v := .data}}{{$k}} {{end}}'],
    { env: { KUBECONFIG: ctx.kubeconfig } },
  );
  out(`  management Secret ${mgmtName} holds: ${mgmt.stdout.trim() || '(unreadable)'}`);

  step('Prove the credentials work at the token endpoint');
  const tokenEndpoint = app.token_endpoint;
  const secret = app.client_secret;
  if (!tokenEndpoint || !secret) throw new Error(`${appSecretName} lacks token_endpoint or client_secret`);
  out(`  POST ${tokenEndpoint} grant_type=client_credentials, HTTP Basic client_id:client_secret`);
  const good = await tokenEndpointAnswer(tokenEndpoint, clientId, secret);
  out(`    → HTTP ${good.status} ${good.error ?? '(token issued)'}`);
  check(good.error !== 'invalid_client', 'the provider authenticated the client (no invalid_client)');
  if (good.error)
    out(dim(`    (${good.error}: the example registers no client_credentials grant; that is fine)`));
  const bad = await tokenEndpointAnswer(tokenEndpoint, clientId, `${secret}-wrong`);
  out(`  the same request with a wrong secret → HTTP ${bad.status} ${bad.error ?? ''}`);
  check(bad.error === 'invalid_client', 'a wrong secret is refused with invalid_client');

  step('Update: add a redirect URI with kubectl apply');
  const updated = structuredClone(example);
  updated.spec.redirectUris = [...(updated.spec.redirectUris ?? []), ADDED_REDIRECT];
  out(`  spec.redirectUris += ${ADDED_REDIRECT}`);
  await kubectl(ctx, ['-n', NAMESPACE, 'apply', '-f', '-'], stringify(updated));
  const generation = (await getClient(ctx, name)).metadata.generation;
  await kubectl(ctx, [
    '-n',
    NAMESPACE,
    'wait',
    `--for=jsonpath={.status.observedGeneration}=${generation}`,
    `oidcclient/${name}`,
    '--timeout=60s',
  ]);
  await kubectl(ctx, [
    '-n',
    NAMESPACE,
    'wait',
    '--for=condition=Ready',
    `oidcclient/${name}`,
    '--timeout=30s',
  ]);
  const stored = await stack.provider.store.get(clientId);
  const uris = stored?.metadata.redirect_uris;
  out(`  provider store: ${clientId} redirect_uris = ${JSON.stringify(uris)}`);
  check(Array.isArray(uris) && uris.includes(ADDED_REDIRECT), 'the provider has the new redirect URI');

  step('Delete: the client is removed at the provider, the Secrets are garbage-collected');
  await kubectl(ctx, ['-n', NAMESPACE, 'delete', 'oidcclient', name, '--timeout=60s']);
  check(
    (await stack.provider.store.get(clientId)) === undefined,
    `client ${clientId} is gone at the provider`,
  );
  await waitFor(
    async () => {
      const r = await runTool(
        stack.kubectlPath,
        ['-n', NAMESPACE, 'get', 'secrets', '-l', `oidc.dcr-operator.dev/client=${name}`, '-o', 'name'],
        { env: { KUBECONFIG: ctx.kubeconfig } },
      );
      return r.code === 0 && r.stdout.trim() === '';
    },
    { description: `the Secrets of ${name} to be garbage-collected`, timeoutMs: 30_000, intervalMs: 250 },
  );
  check(true, `Secrets ${appSecretName} and ${mgmtName} are gone`);

  out(`\n${styleText('bold', `Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.`)}`);
  if (!keep) return;

  step('--keep: re-register the example so there is something to look at');
  await applyExampleAndWait(ctx, name);
  const port = stack.operator.healthPort;
  out(`
Everything keeps running until Ctrl-C. In another terminal:

  export KUBECONFIG=${ctx.kubeconfig}
  export PATH=${stack.controlPlane.binDir}:$PATH   # kubectl: ${stack.kubectlPath}
  kubectl -n ${NAMESPACE} get oidcclients,oidcproviders,secrets
  kubectl -n ${NAMESPACE} describe oidcclient ${name}
  kubectl -n ${NAMESPACE} delete oidcclient ${name}     # watch the operator log here

  registration server: ${stack.provider.issuer}/.well-known/openid-configuration
  operator metrics:    ${port === undefined ? '(off)' : `http://127.0.0.1:${port}/metrics`}
`);
  await teardown.untilInterrupted();
  out('\nCtrl-C: tearing everything down');
}

let keep = false;
let gitops = false;
try {
  const { values } = parseArgs({
    options: {
      keep: { type: 'boolean', default: false },
      gitops: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    out(USAGE);
    process.exit(0);
  }
  keep = values.keep ?? false;
  gitops = values.gitops ?? false;
} catch (error) {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
  process.exit(2);
}
await runWithTeardown('demo', async (teardown) => {
  if (gitops) {
    const { demoGitops } = await import('./demo-gitops.js');
    await demoGitops(teardown);
  } else {
    await demo(teardown, keep);
  }
});
