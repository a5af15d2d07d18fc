// A deletion whose provider-side DELETE succeeded but whose next step fails (an admission policy
// refuses releasing the management Secret for a while): the retries must not DELETE again. A second
// DELETE with the same token is answered 401 (the client is gone), which under RFC 7592 could also
// mean "token rejected", so each one would cost a token-endpoint probe too. Real kube-apiserver,
// real registration server.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  applyDenyPolicy,
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  removeDenyPolicy,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const FINALIZER = 'oidc.dcr-operator.dev/registration';

describe('OidcClient deletion: a step after the provider DELETE fails for a while', () => {
  let server: RegistrationServer;
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;
  let op: InProcessOperator | undefined;
  const policy = `hold-registration-finalizer-${Math.random().toString(16).slice(2, 8)}`;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'deletion-retry');
    await kubectlApply(binDir, kubeconfigPath, providerYaml('iam', server.issuer), ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name, resyncIntervalMs: 600_000 });
  });

  afterAll(async () => {
    await op?.stop();
    await removeDenyPolicy(binDir, kubeconfigPath, policy);
    await ns?.cleanup();
    await server?.close();
  });

  it('deletes the client at the provider once, and finishes when the refusal ends', async () => {
    const r = new OidcReader(kc, ns.name);
    await kubectlApply(
      binDir,
      kubeconfigPath,
      clientYaml('held', 'iam', '  redirectUris: ["https://held.example.org/cb"]\n'),
      ns.name,
    );
    const ready = await r.waitReady('held', { timeoutMs: 30_000 });
    const clientId = ready.status?.clientId as string;

    // Refuse removing our finalizer from registration Secrets in this namespace.
    await applyDenyPolicy(binDir, kubeconfigPath, {
      name: policy,
      namespace: ns.name,
      operations: ['UPDATE'],
      resources: ['secrets'],
      expression: `!(has(oldObject.metadata.finalizers) && '${FINALIZER}' in oldObject.metadata.finalizers) || (has(object.metadata.finalizers) && '${FINALIZER}' in object.metadata.finalizers)`,
      message: 'the registration finalizer stays for now',
    });
    // The policy takes effect within moments: wait until a finalizer removal is refused (dry run).
    const mgmt = `held-oidc-registration`;
    await waitFor(
      async () => {
        const probe = await kubectl(binDir, kubeconfigPath, [
          '-n',
          ns.name,
          'patch',
          'secret',
          mgmt,
          '--dry-run=server',
          '--type=json',
          '-p',
          '[{"op":"remove","path":"/metadata/finalizers"}]',
        ]);
        return probe.code !== 0 && probe.stderr.includes('stays for now');
      },
      { description: 'the admission policy to refuse the finalizer removal', timeoutMs: 20_000 },
    );

    const requestsBefore = server.requests.length;
    const kubeBefore = op?.requests.length ?? 0;
    await kubectl(binDir, kubeconfigPath, ['-n', ns.name, 'delete', 'oidcclient', 'held', '--wait=false']);
    // The provider DELETE happens, then releasing the management Secret fails and is retried
    // with backoff (0.5, 1, 2, 4 s ...): wait for a few retries.
    await waitFor(() => server.requests.slice(requestsBefore).some((q) => q.method === 'DELETE'), {
      description: 'the provider DELETE',
      timeoutMs: 20_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await r.client('held'))?.metadata.deletionTimestamp).toBeTruthy();
    // The refused release is retried with backoff: a handful of PATCHes in 5 s, not a tight loop
    // of PATCH and GET (a policy's refusal is a 422, like a failed JSON-patch test).
    const releases = (op?.requests ?? [])
      .slice(kubeBefore)
      .filter((q) => q.startsWith('PATCH') && q.endsWith(`/secrets/${mgmt}`));
    expect(releases.length).toBeGreaterThanOrEqual(2);
    expect(releases.length).toBeLessThanOrEqual(8);

    await kubectl(binDir, kubeconfigPath, [
      'delete',
      'validatingadmissionpolicybinding,validatingadmissionpolicy',
      policy,
    ]);
    await waitFor(async () => (await r.client('held')) === undefined, {
      description: 'the OidcClient gone once the Secret may be released',
      timeoutMs: 30_000,
    });

    const after = server.requests.slice(requestsBefore);
    const deletes = after.filter((q) => q.method === 'DELETE');
    expect(deletes.map((q) => q.status)).toEqual([204]);
    // No second DELETE, so no 401 to tell apart with a token-endpoint probe.
    expect(after.filter((q) => q.method === 'POST')).toEqual([]);
    expect((await server.store.list()).map((c) => c.clientId)).not.toContain(clientId);
    const secrets = await kubectl(binDir, kubeconfigPath, ['-n', ns.name, 'get', 'secrets', '-o', 'name']);
    await waitFor(
      async () => {
        const left = await kubectl(binDir, kubeconfigPath, ['-n', ns.name, 'get', 'secrets', '-o', 'name']);
        return !left.stdout.includes('held-oidc');
      },
      { description: `both Secrets gone (were: ${secrets.stdout.trim()})`, timeoutMs: 30_000 },
    );
  });
});
