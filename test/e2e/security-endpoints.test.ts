// A registration access token goes only to the provider that issued it. A second loopback listener
// stands for "another host" and records every request; each probe (an edited management Secret, an
// adoption Secret, provider answers naming it, a redirect to it, the deletion of a client pointing
// at it) must leave it with nothing. Also: a Secret pointing at another client's management URL on
// the same provider must not touch that client. Real kube-apiserver, real node-oidc-provider.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ForeignListener, startForeignListener } from '../harness/foreign-listener.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DELETION_TIMEOUT_MS = 3_000;

describe('management calls go only to the provider', () => {
  let server: RegistrationServer;
  let foreign: ForeignListener;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  /** Probe → what the user saw; printed at the end for the record. */
  const seen: string[] = [];

  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const mgmt = (name: string) => r.secretValues(`${name}-oidc-registration`);
  const foreignUri = (id: string) => `${foreign.origin}/iam/api/client-registration/${id}`;
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
  const toClient = (id: string, since: number) =>
    server.requests.slice(since).filter((q) => q.path.endsWith(`/client-registration/${id}`));
  async function patchSecret(name: string, values: Record<string, string>): Promise<void> {
    const res = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', name, '-p', JSON.stringify({ stringData: values })],
      { namespace: ns.name },
    );
    expect(res.code, res.stderr).toBe(0);
  }
  async function deleteClient(name: string): Promise<number> {
    const started = Date.now();
    const res = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', name, '--timeout=40s'], {
      namespace: ns.name,
    });
    expect(res.code, res.stderr).toBe(0);
    return Date.now() - started;
  }
  async function warning(name: string, reason: string): Promise<string> {
    const e = await waitFor(async () => (await r.events(name)).find((x) => x.reason === reason), {
      description: `Event ${reason} on ${name}`,
      timeoutMs: 10_000,
    });
    expect(e.type).toBe('Warning');
    return e.message;
  }
  function record(probe: string, reason: string | undefined, message: string | undefined): void {
    seen.push(`${probe}: foreign requests=${foreign.requests.length}; Ready=False ${reason}: ${message}`);
  }

  beforeAll(async () => {
    [server, foreign] = await Promise.all([startRegistrationServer(), startForeignListener()]);
    ns = await createTestNamespace(kc, 'security-endpoints');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      deletionTimeoutMs: DELETION_TIMEOUT_MS,
      providerRequestTimeoutMs: 2_000,
      providerRetries: 1,
    });
  });

  afterAll(async () => {
    if (seen.length > 0) console.info(`security probes:\n${seen.join('\n')}`);
    await op?.stop();
    await ns?.cleanup();
    await Promise.all([server?.close(), foreign?.close()]);
  });

  it('an edited management Secret naming another host: nothing is sent there, fixing it recovers', async () => {
    await apply(clientYaml('edited', 'iam', '  redirectUris: [https://edited.example.org/cb]\n'));
    const ready = await r.waitReady('edited');
    const id = ready.status?.clientId as string;
    const original = (await mgmt('edited'))?.registration_client_uri as string;
    await patchSecret('edited-oidc-registration', { registration_client_uri: foreignUri(id) });
    // A spec change asks for a GET at once (as the next drift check would).
    await apply(
      clientYaml(
        'edited',
        'iam',
        '  redirectUris: [https://edited.example.org/cb, https://edited.example.org/2]\n',
      ),
    );
    const cr = await r.waitReady('edited', { status: 'False', reason: 'UntrustedEndpoint' });
    const since = server.requests.length;
    const message = r.condition(cr, 'Ready')?.message ?? '';
    expect(message).toContain(foreign.origin);
    expect(message).toContain('spec.managementOrigins');
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    expect(cr.status?.registrationClientUri).toBe(original);
    expect(await warning('edited', 'UntrustedEndpoint')).toContain(foreign.origin);
    await sleep(2_000);
    expect(foreign.requests).toEqual([]);
    expect(toClient(id, since)).toEqual([]); // stalled: no retry loop
    record('edited Secret -> foreign host', 'UntrustedEndpoint', message);

    await patchSecret('edited-oidc-registration', { registration_client_uri: original });
    const fixed = await r.waitReady('edited', { reason: 'Registered' });
    expect((await server.store.get(id))?.metadata.redirect_uris).toHaveLength(2);
    expect(fixed.status?.clientId).toBe(id);
  });

  it("an edited Secret naming another client's management URL never touches that client", async () => {
    await apply(clientYaml('victim', 'iam', '  redirectUris: [https://victim.example.org/cb]\n'));
    await apply(clientYaml('attacker', 'iam', '  redirectUris: [https://attacker.example.org/cb]\n'));
    const victimId = (await r.waitReady('victim')).status?.clientId as string;
    await r.waitReady('attacker');
    const victimBefore = (await server.store.get(victimId))?.metadata;
    const victimUri = (await mgmt('victim'))?.registration_client_uri as string;
    const since = server.requests.length;

    await patchSecret('attacker-oidc-registration', { registration_client_uri: victimUri });
    // The attacker's spec now differs, so a GET and a PUT would follow if the URL were trusted.
    await apply(clientYaml('attacker', 'iam', '  redirectUris: [https://evil.example.org/cb]\n'));
    const cr = await r.waitReady('attacker', { status: 'False', reason: 'ClientMismatch' });
    const message = r.condition(cr, 'Ready')?.message ?? '';
    expect(message).toContain(`names client ${victimId}`);
    expect(await warning('attacker', 'ClientMismatch')).toContain(victimId);

    const elapsed = await deleteClient('attacker');
    // deletionTimestamp has whole-second precision: the operator's clock may start up to 1 s early.
    expect(elapsed).toBeGreaterThanOrEqual(DELETION_TIMEOUT_MS - 1_100);
    const abandoned = (await r.events('attacker')).find((e) => e.reason === 'DeletionAbandoned');
    expect(abandoned?.message).toContain(`names client ${victimId}`);
    expect(toClient(victimId, since)).toEqual([]);
    expect((await server.store.get(victimId))?.metadata).toEqual(victimBefore);
    expect(r.condition(await r.client('victim'), 'Ready')?.status).toBe('True');
    expect(foreign.requests).toEqual([]);
    record('edited Secret -> other client URI', 'ClientMismatch', message);
  });

  it('an adoption Secret naming another host: nothing is sent, nothing registered', async () => {
    const res = await fetch(server.registrationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'legacy', redirect_uris: ['https://legacy.example.org/cb'] }),
    });
    expect(res.status).toBe(201);
    const json = (await res.json()) as Record<string, unknown>;
    const id = json.client_id as string;
    json.registration_client_uri = foreignUri(id);
    const before = posts();
    await apply(`apiVersion: v1
kind: Secret
metadata:
  name: adopt-foreign
stringData:
  client.json: '${JSON.stringify(json)}'
`);
    await apply(clientYaml('adopter', 'iam', '  adoptFrom:\n    secretRef:\n      name: adopt-foreign\n'));
    const cr = await r.waitReady('adopter', { status: 'False', reason: 'UntrustedEndpoint' });
    const message = r.condition(cr, 'Ready')?.message ?? '';
    expect(message).toMatch(/^adoption Secret adopt-foreign: registration_client_uri points to http:\/\/127/);
    await sleep(1_000);
    expect(foreign.requests).toEqual([]);
    expect(posts()).toBe(before);
    expect((await mgmt('adopter'))?.client_id).toBeUndefined();
    expect(await r.secret('adopter-oidc-client')).toBeUndefined();
    record('adoption JSON -> foreign host', 'UntrustedEndpoint', message);
  });

  it('a registration answer naming another host: stored, never called, no second registration', async () => {
    server.faults.add({
      method: 'POST',
      pathPattern: /client-registration$/,
      rewrite: (b) => ({ ...b, registration_client_uri: foreignUri(String(b.client_id)) }),
    });
    const before = posts();
    await apply(clientYaml('posted', 'iam', '  redirectUris: [https://posted.example.org/cb]\n'));
    const cr = await r.waitReady('posted', { status: 'False', reason: 'UntrustedEndpoint' });
    const message = r.condition(cr, 'Ready')?.message ?? '';
    const stored = await mgmt('posted');
    const id = stored?.client_id as string;
    expect(await server.store.get(id)).toBeDefined();
    expect(stored?.registration_access_token).toBeTruthy();
    expect(stored?.registration_client_uri).toBe(foreignUri(id));
    expect(await r.secret('posted-oidc-client')).toBeUndefined();
    await sleep(2_000);
    expect(posts() - before).toBe(1);
    expect(foreign.requests).toEqual([]);
    expect((await r.events('posted')).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['UntrustedEndpoint']),
    );
    record('POST answer with foreign registration_client_uri', 'UntrustedEndpoint', message);

    // Deleting it sends nothing either: the finalizer gives up after --deletion-timeout and says why.
    await deleteClient('posted');
    expect((await r.events('posted')).find((e) => e.reason === 'DeletionAbandoned')?.message).toContain(
      foreign.origin,
    );
    expect(await server.store.get(id)).toBeDefined();
    expect(foreign.requests).toEqual([]);
  });

  it('an origin the admin lists in managementOrigins makes such a client manageable', async () => {
    // Same server, other origin: what a provider with a separate admin host looks like.
    const alias = server.issuer.replace('127.0.0.1', 'localhost');
    await apply(providerYaml('iam-alias', server.issuer));
    server.faults.add({
      method: 'POST',
      pathPattern: /client-registration$/,
      rewrite: (b) => ({
        ...b,
        registration_client_uri: `${alias}/iam/api/client-registration/${b.client_id}`,
      }),
    });
    const before = posts();
    await apply(clientYaml('aliased', 'iam-alias', '  redirectUris: [https://aliased.example.org/cb]\n'));
    await r.waitReady('aliased', { status: 'False', reason: 'UntrustedEndpoint' });
    await apply(providerYaml('iam-alias', server.issuer, `  managementOrigins: ["${alias}"]\n`));
    const cr = await r.waitReady('aliased', { reason: 'Registered' });
    expect(cr.status?.registrationClientUri?.startsWith(alias)).toBe(true);
    expect((await r.secretValues('aliased-oidc-client'))?.client_id).toBe(cr.status?.clientId);
    expect(posts() - before).toBe(1);
  });

  it('refuses an http management origin next to an https provider at apply time (CRD CEL rule)', async () => {
    // The apiserver refuses it, so no provider object (and no client using it) ever exists with it;
    // the operator's own check (ProviderInvalid) stays for objects stored before the rule.
    await expect(
      apply(providerYaml('tls-iam', 'https://127.0.0.1:1/', '  managementOrigins: ["http://127.0.0.1:2"]\n')),
    ).rejects.toThrow(
      /spec\.managementOrigins: Invalid value: http origins are refused: the provider uses https, and the registration access token must not travel in clear/,
    );
  });

  it('a GET answer naming another host: the stored URL stays, nothing is sent there', async () => {
    await apply(clientYaml('got', 'iam', '  redirectUris: [https://got.example.org/cb]\n'));
    const id = (await r.waitReady('got')).status?.clientId as string;
    const mgmtBefore = await mgmt('got');
    const appBefore = await r.secretValues('got-oidc-client');
    server.faults.add({
      method: 'GET',
      pathPattern: new RegExp(`/client-registration/${id}$`),
      rewrite: (b) => ({ ...b, registration_client_uri: foreignUri(id) }),
      times: Number.POSITIVE_INFINITY,
    });
    const since = server.requests.length;
    try {
      await apply(clientYaml('got', 'iam', '  redirectUris: [https://got.example.org/new]\n'));
      const cr = await r.waitReady('got', { status: 'False', reason: 'UntrustedEndpoint' });
      const message = r.condition(cr, 'Ready')?.message ?? '';
      expect(message).toContain("provider's GET answer");
      expect(message).toContain(foreign.origin);
      await sleep(1_500);
      expect(await mgmt('got')).toEqual(mgmtBefore);
      expect(await r.secretValues('got-oidc-client')).toEqual(appBefore);
      expect(toClient(id, since).map((q) => q.method)).toEqual(['GET']);
      expect(foreign.requests).toEqual([]);
      record('GET answer with foreign registration_client_uri', 'UntrustedEndpoint', message);
    } finally {
      server.faults.clear();
    }
  });

  it('a redirect to another host is not followed, neither on GET nor on DELETE', async () => {
    await apply(clientYaml('redirected', 'iam', '  redirectUris: [https://redirected.example.org/cb]\n'));
    const id = (await r.waitReady('redirected')).status?.clientId as string;
    const path = new RegExp(`/client-registration/${id}$`);
    const location = { location: foreignUri(id) };
    server.faults.add({ method: 'GET', pathPattern: path, status: 302, headers: location, times: 50 });
    server.faults.add({ method: 'DELETE', pathPattern: path, status: 307, headers: location, times: 50 });
    try {
      await apply(clientYaml('redirected', 'iam', '  redirectUris: [https://redirected.example.org/new]\n'));
      const cr = await r.waitReady('redirected', { status: 'False', reason: 'UnexpectedResponse' });
      const message = r.condition(cr, 'Ready')?.message ?? '';
      expect(message).toContain(`HTTP 302 redirect to ${foreign.origin}`);
      expect(message).toContain('not followed');
      record('3xx redirect (GET)', 'UnexpectedResponse', message);

      await deleteClient('redirected');
      const abandoned = (await r.events('redirected')).find((e) => e.reason === 'DeletionAbandoned');
      expect(abandoned?.message).toContain('HTTP 307 redirect');
      expect(await server.store.get(id)).toBeDefined();
      expect(foreign.requests).toEqual([]);
      seen.push(
        `3xx redirect (DELETE): foreign requests=${foreign.requests.length}; Event DeletionAbandoned: ${abandoned?.message}`,
      );
    } finally {
      server.faults.clear();
    }
  });

  it('deleting a client whose Secret names another host sends nothing and says why', async () => {
    await apply(clientYaml('doomed', 'iam', '  redirectUris: [https://doomed.example.org/cb]\n'));
    const id = (await r.waitReady('doomed')).status?.clientId as string;
    await patchSecret('doomed-oidc-registration', { registration_client_uri: foreignUri(id) });
    const since = server.requests.length;
    const started = Date.now();
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'doomed', '--wait=false'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    // While the finalizer retries, the status says why nothing happens.
    const deleting = await waitFor(
      async () => {
        const ready = r.condition(await r.client('doomed'), 'Ready');
        return ready?.reason === 'UntrustedEndpoint' && ready.message?.startsWith('deleting') && ready;
      },
      { description: 'doomed Ready=False UntrustedEndpoint while deleting', timeoutMs: 10_000 },
    );
    await waitFor(async () => (await r.client('doomed')) === undefined, {
      description: 'doomed gone after the deletion timeout',
      timeoutMs: 30_000,
    });
    // deletionTimestamp has whole-second precision, so the operator's clock may start up to 1 s early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(DELETION_TIMEOUT_MS - 1_100);
    const abandoned = (await r.events('doomed')).find((e) => e.reason === 'DeletionAbandoned');
    expect(abandoned?.type).toBe('Warning');
    expect(abandoned?.message).toContain(`points to ${foreign.origin}`);
    expect(toClient(id, since)).toEqual([]);
    expect(await server.store.get(id)).toBeDefined();
    expect(foreign.requests).toEqual([]);
    record('deletion with Secret -> foreign host (while deleting)', 'UntrustedEndpoint', deleting.message);
    seen.push(`  then Event DeletionAbandoned: ${abandoned?.message}`);
  });

  it('never logs a registration access token', async () => {
    const tokens = (await server.store.list()).length;
    expect(tokens).toBeGreaterThan(0);
    const secrets = await r.core.listNamespacedSecret({ namespace: ns.name });
    const rats = secrets.items
      .map((s) => s.data?.registration_access_token)
      .filter((v): v is string => !!v)
      .map((v) => Buffer.from(v, 'base64').toString('utf8'));
    expect(rats.length).toBeGreaterThan(0);
    const logs = op?.logLines.join('') ?? '';
    for (const rat of rats) expect(logs).not.toContain(rat);
  });
});
