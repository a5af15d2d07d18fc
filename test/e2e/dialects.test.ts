// The conformance suite of server dialects: one table row per way a real RFC 7591/7592 server
// departs from node-oidc-provider's own behaviour (the registration server speaks each on request),
// and for each the whole lifecycle on real parts: register, update, drift repair, a deleted
// application Secret restored, idle resyncs, adoption of a client registered by hand (through
// `import`), a rejected token told from a gone client, deletion. Each row asserts what reached the
// provider (its request log and store) and what was stored (both Secrets, status), and prints its
// numbers at the end. Rows run side by side, each in its own namespace with its own operator.
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
import { importIamClient } from '../../src/cli/iam-client.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, credentialsAuthenticate, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { DIALECT_PRESETS, type DialectPreset } from '../harness/registration-server/dialects.js';
import {
  type RecordedRequest,
  type RegistrationServer,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RESYNC_MS = 800;
/** The quiet period in which nothing but drift checks may happen: several resync intervals. */
const IDLE_MS = 3_200;
type Row = DialectPreset;
const ROWS = DIALECT_PRESETS;

// Upper-case host and no path: a normalising server stores https://app.example.org/.
const APP_SPEC = `  clientName: app
  redirectUris: [https://App.Example.org]
  grantTypes: [authorization_code]
  scopes: [email, profile]
  contacts: [ops@example.org]
`;
const APP_SPEC_2 = APP_SPEC.replace(
  '[https://App.Example.org]',
  '[https://App.Example.org, https://app.example.org/cb2]',
).replace('[email, profile]', '[email, profile, address]');
const WANT_REDIRECTS = ['https://app.example.org/', 'https://app.example.org/cb2'];

const summary: string[] = [];

describe('RFC 7591/7592 dialects: the whole lifecycle against each', () => {
  afterAll(() => {
    console.log(`dialect results (resync ${RESYNC_MS} ms, idle window ${IDLE_MS} ms)\n${summary.join('\n')}`);
  });

  it.concurrent.each(ROWS)('$name', async (row) => {
    const server = await startRegistrationServer(row.options);
    let ns: TestNamespace | undefined;
    let op: InProcessOperator | undefined;
    try {
      ns = await createTestNamespace(kc, 'dialect');
      op = await startInProcessOperator({
        kubeconfigPath,
        namespace: ns.name,
        resyncIntervalMs: RESYNC_MS,
        deletionTimeoutMs: 10_000,
      });
      summary.push(`${row.name}: ${await lifecycle(row, server, ns, op)}`);
    } finally {
      await op?.stop();
      await ns?.cleanup();
      await server.close();
    }
  });
});

/** Runs every step against one dialect; returns the measured numbers as one line. */
async function lifecycle(
  row: Row,
  server: RegistrationServer,
  ns: TestNamespace,
  op: InProcessOperator,
): Promise<string> {
  const r = new OidcReader(kc, ns.name);
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const d = server.dialect;
  const managed = row.options.omitManagementCredentials !== true;
  const regPath = new URL(server.registrationEndpoint).pathname;
  const tokenPath = new URL(server.tokenEndpoint).pathname;
  const calls = (method: string, from: number, id?: string): RecordedRequest[] =>
    server.requests
      .slice(from)
      .filter(
        (q) =>
          q.method === method &&
          (method === 'POST' && id === undefined
            ? q.path === regPath
            : id === undefined
              ? q.path.startsWith(`${regPath}/`)
              : q.path === `${regPath}/${id}`),
      );
  const probes = (from: number) => server.requests.slice(from).filter((q) => q.path === tokenPath).length;
  const mgmtWrites = (from: number, name: string) =>
    op.writes.slice(from).filter((w) => w.endsWith(`/secrets/${name}-oidc-registration`));
  const stored = async (id: string) => (await server.store.get(id))?.metadata;
  const notes: string[] = [];

  // ---- register
  const providerSpec = [
    row.explicitEndpoint ? `  registrationEndpoint: ${server.registrationEndpoint}\n` : '',
    row.options.initialAccessToken ? '  initialAccessTokenSecretRef: { name: iat }\n' : '',
  ].join('');
  if (row.options.initialAccessToken) {
    await apply(
      `apiVersion: v1\nkind: Secret\nmetadata: { name: iat }\nstringData: { token: ${row.options.initialAccessToken} }\n`,
    );
  }
  await apply(providerYaml('p', server.issuer, providerSpec));
  // A client registered by hand (as a user would, with curl), adopted below through `import`.
  const hand = await registerByHand(server, row);
  await apply(clientYaml('app', 'p', APP_SPEC));
  await adoptThroughImport(hand, apply);

  const [app, legacy] = await Promise.all([r.waitReady('app'), r.waitReady('legacy', { reason: 'Adopted' })]);
  const id = app.status?.clientId as string;
  expect(legacy.status?.clientId).toBe(hand.client_id);
  // A registration without management is adopted on the word of the token endpoint (one probe).
  expect(probes(0)).toBe(managed ? 0 : 1);
  const posts = calls('POST', 0);
  // One POST by hand, one by the operator; nothing registered again for the adopted client.
  expect(posts.map((q) => q.status)).toEqual([d.registrationStatus ?? 201, d.registrationStatus ?? 201]);
  const appSecret = await r.secretValues('app-oidc-client');
  const appMgmt = await r.secretValues('app-oidc-registration');
  expect(appSecret).toEqual({
    client_id: id,
    client_secret: (await stored(id))?.client_secret,
    issuer: server.issuer,
    token_endpoint: server.tokenEndpoint,
  });
  expect(await credentialsAuthenticate(server.tokenEndpoint, id, appSecret?.client_secret as string)).toBe(
    true,
  );
  expect((await r.secretValues('legacy-oidc-client'))?.client_secret).toBe(hand.client_secret);
  if (managed) {
    expect(appMgmt?.registration_client_uri).toBe(`${server.registrationEndpoint}/${id}`);
    expect(appMgmt?.registration_access_token).toBeTruthy();
    expect(r.condition(app, 'Managed')).toBeUndefined();
  } else {
    expect(appMgmt).not.toHaveProperty('registration_access_token');
    expect(r.condition(app, 'Managed')).toMatchObject({ status: 'False', reason: 'ManagementUnsupported' });
    expect(r.condition(legacy, 'Managed')).toMatchObject({
      status: 'False',
      reason: 'ManagementUnsupported',
    });
    // Credentials that do not authenticate are not adopted (nothing else can vouch for them).
    const forged = JSON.stringify({ client_id: hand.client_id, client_secret: 'not-the-secret' });
    await apply(
      `apiVersion: v1\nkind: Secret\nmetadata: { name: forged-adopt }\nstringData:\n  client.json: '${forged}'\n`,
    );
    await apply(clientYaml('forged', 'p', '  adoptFrom: { secretRef: { name: forged-adopt } }\n'));
    const refused = await r.waitReady('forged', { status: 'False', reason: 'AdoptionFailed' });
    expect(r.condition(refused, 'Ready')?.message).toMatch(
      /do not authenticate at the provider's token endpoint/,
    );
    expect(await r.secret('forged-oidc-client')).toBeUndefined();
    expect(calls('POST', 0)).toHaveLength(2);
  }
  // Nothing the server filled in, normalised or extended by itself was sent back.
  expect(calls('PUT', 0)).toEqual([]);
  if (!managed) expect(calls('GET', 0)).toEqual([]);
  expect(app.status?.ignoredFields).toBeUndefined();
  // Shown on the status when the provider says it (an unmanaged client is never read back).
  const issuedAt = (await stored(id))?.client_id_issued_at as number;
  const lifetime = d.clientSecretLifetimeSeconds ?? 0;
  expect(app.status?.clientSecretExpiresAt).toBe(managed ? lifetime && issuedAt + lifetime : undefined);
  const forms = (await r.secret('app-oidc-registration'))?.metadata?.annotations?.[
    'oidc.dcr-operator.dev/provider-forms'
  ];
  if (d.normalise) expect(Object.keys(JSON.parse(forms ?? '{}'))).toEqual(['grant_types', 'scope']);
  else expect(forms).toBeUndefined();
  notes.push(`register+adopt: ${countLine(server.requests, regPath)}`);

  // ---- update
  let mark = server.requests.length;
  const ratBefore = appMgmt?.registration_access_token;
  await apply(clientYaml('app', 'p', APP_SPEC_2));
  const updated = await r.waitReady('app');
  expect(updated.metadata.generation).toBe(2);
  if (managed) {
    expect(normalisedUris((await stored(id))?.redirect_uris)).toEqual(WANT_REDIRECTS);
    const puts = calls('PUT', mark, id).map((q) => q.status);
    expect(puts).toEqual(d.putClientSecret === 'required' ? [400, 200] : [200]);
    const ratAfter = (await r.secretValues('app-oidc-registration'))?.registration_access_token;
    if (d.ratRotation === 'never') expect(ratAfter).toBe(ratBefore);
    else expect(ratAfter).not.toBe(ratBefore);
    expect(updated.status?.ignoredFields).toBeUndefined();
    notes.push(`update PUT ${puts.join('+')}`);
  } else {
    expect(calls('PUT', mark)).toEqual([]);
    expect(r.condition(updated, 'Synced')).toMatchObject({
      status: 'False',
      reason: 'ManagementUnsupported',
    });
    notes.push('update: Synced=False ManagementUnsupported, no PUT');
  }

  // ---- drift
  if (managed) {
    mark = server.requests.length;
    await server.store.update(id, { redirect_uris: ['https://evil.example.org/steal'] });
    await waitFor(async () => sameList(normalisedUris((await stored(id))?.redirect_uris), WANT_REDIRECTS), {
      description: `${row.name}: redirect URIs repaired at the provider`,
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await r.events('app')).some((e) => e.reason === 'DriftCorrected'), {
      description: `${row.name}: DriftCorrected Event`,
      timeoutMs: 5_000,
    });
    // Learnt on the update: a server that wants client_secret gets it at once now.
    expect(calls('PUT', mark, id).map((q) => q.status)).toEqual([200]);
  }

  // ---- a deleted application Secret comes back with the same credentials, nothing registered
  mark = server.requests.length;
  const before = await r.secretValues('app-oidc-client');
  const del = await kubectl(binDir, kubeconfigPath, ['delete', 'secret', 'app-oidc-client'], {
    namespace: ns.name,
  });
  expect(del.code, del.stderr).toBe(0);
  await waitFor(
    async () => (await r.secretValues('app-oidc-client'))?.client_secret === before?.client_secret,
    {
      description: `${row.name}: application Secret restored`,
      timeoutMs: 10_000,
    },
  );
  expect(calls('POST', mark)).toEqual([]);

  // ---- idle: drift checks only, nothing sent back, nothing written but rotated tokens
  await r.waitReady('app');
  await sleep(RESYNC_MS);
  mark = server.requests.length;
  const writesMark = op.writes.length;
  await sleep(IDLE_MS);
  // On a loaded machine the drift checks come later than the interval: wait for two per client.
  if (managed)
    await waitFor(() => calls('GET', mark).length >= 4, {
      description: `${row.name}: two drift checks per client`,
      timeoutMs: 20_000,
    });
  // Writes first, then GETs: every rotated-token write follows its GET, so none is counted without
  // its GET — except for a GET already in flight at the mark (one per client at most).
  const writes = op.writes.slice(writesMark);
  const gets = calls('GET', mark).length;
  expect(calls('POST', mark)).toEqual([]);
  expect(calls('PUT', mark)).toEqual([]);
  expect(calls('DELETE', mark)).toEqual([]);
  if (managed)
    expect(gets).toBeGreaterThanOrEqual(4); // two clients, at least two intervals each
  else expect(gets + probes(mark)).toBe(0);
  if (d.ratRotation === 'every-call') {
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(gets + 2);
    for (const w of writes) expect(w).toMatch(/^PUT .*\/secrets\/(app|legacy)-oidc-registration$/);
  } else {
    expect(writes).toEqual([]);
  }
  notes.push(`idle ${IDLE_MS} ms: ${gets} GET, 0 PUT, ${writes.length} apiserver writes`);

  if (managed) {
    // ---- 401 with working credentials: the token is rejected, the client is not registered again
    mark = server.requests.length;
    const writeMark = op.writes.length;
    // Revoked until rejected: a rotating server may hand out a new token to a GET in flight.
    const rejected = await waitFor(
      async () => {
        await server.store.revokeRegistrationAccessToken(id);
        const c = await r.client('app');
        const ready = r.condition(c, 'Ready');
        return ready?.status === 'False' && ready.reason === 'RegistrationTokenRejected' ? c : undefined;
      },
      { description: `${row.name}: RegistrationTokenRejected`, timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(rejected?.status?.clientId).toBe(id);
    expect(calls('POST', mark)).toEqual([]);
    expect(probes(mark)).toBeGreaterThanOrEqual(1);
    if (d.ratRotation === 'never') expect(mgmtWrites(writeMark, 'app')).toHaveLength(1); // the rejected-token mark
    // The way out: a new token in the management Secret.
    const fresh = await server.store.issueRegistrationAccessToken(id);
    const patch = JSON.stringify({ stringData: { registration_access_token: fresh } });
    const patched = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'app-oidc-registration', '-p', patch],
      {
        namespace: ns.name,
      },
    );
    expect(patched.code, patched.stderr).toBe(0);
    expect((await r.waitReady('app', { timeoutMs: 15_000 })).status?.clientId).toBe(id);

    // ---- the client is gone at the provider (401 confirmed by the token endpoint, or 404)
    mark = server.requests.length;
    await server.store.delete(id);
    const again = await waitFor(
      async () => {
        const c = await r.client('app');
        return c?.status?.clientId !== id && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
      },
      { description: `${row.name}: a new client after the old one vanished`, timeoutMs: 15_000 },
    );
    expect(calls('POST', mark)).toHaveLength(1);
    expect((await r.secretValues('app-oidc-client'))?.client_id).toBe(again.status?.clientId);
    expect((await r.events('app')).some((e) => e.reason === 'ReRegistered' && e.message.includes(id))).toBe(
      true,
    );
    // 404 is the provider's own word; a 401 needs the token endpoint to say the client is gone.
    if (d.unknownClientStatus === 404) expect(probes(mark)).toBe(0);
    else expect(probes(mark)).toBeGreaterThanOrEqual(1);
    const answers = [...new Set(calls('GET', mark, id).map((q) => q.status))].join('/');
    notes.push(`gone: GET ${answers}, ${probes(mark)} token probe(s) -> re-registered`);
  }

  // ---- deletion
  mark = server.requests.length;
  const ids = [(await r.client('app'))?.status?.clientId as string, hand.client_id];
  const gone = await kubectl(
    binDir,
    kubeconfigPath,
    ['delete', 'oidcclient', 'app', 'legacy', ...(managed ? [] : ['forged']), '--timeout=30s'],
    {
      namespace: ns.name,
    },
  );
  expect(gone.code, gone.stderr).toBe(0);
  const deletes = calls('DELETE', mark).map((q) => q.status);
  if (managed) {
    expect(deletes).toEqual([d.deleteStatus ?? 204, d.deleteStatus ?? 204]);
    for (const clientId of ids) expect(await server.store.get(clientId)).toBeUndefined();
  } else {
    expect(deletes).toEqual([]);
    for (const clientId of ids) expect(await server.store.get(clientId)).toBeDefined();
    expect((await r.events('app')).some((e) => e.reason === 'ManagementUnsupported')).toBe(true);
  }
  notes.push(`delete ${deletes.join('+') || 'none (stays at the provider)'}`);
  expect(op.logLines.join('')).not.toContain(hand.client_secret);
  return notes.join('; ');
}

interface HandRegistration {
  client_id: string;
  client_secret: string;
  [key: string]: unknown;
}

/** POSTs a client the way a user does by hand; the answer is what `import` gets. */
async function registerByHand(server: RegistrationServer, row: Row): Promise<HandRegistration> {
  const res = await fetch(server.registrationEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(row.options.initialAccessToken
        ? { authorization: `Bearer ${row.options.initialAccessToken}` }
        : {}),
    },
    body: JSON.stringify({
      client_name: 'legacy',
      redirect_uris: ['https://legacy.example.org/cb'],
      scope: 'openid email',
    }),
  });
  expect(res.status).toBe(server.dialect.registrationStatus ?? 201);
  return (await res.json()) as HandRegistration;
}

/** `import` turns the server's answer into the adoption Secret and an OidcClient; both are applied. */
async function adoptThroughImport(
  hand: HandRegistration,
  apply: (yaml: string) => Promise<string>,
): Promise<void> {
  const result = importIamClient(JSON.stringify(hand), {
    name: 'legacy',
    provider: 'p',
    providerKind: 'OidcProvider',
  });
  // Whatever the server wrote for "not set" or for itself stays out of the spec; nothing it wrote is
  // beyond what an OidcClient can hold.
  expect(result.notRepresentable).toEqual([]);
  const spec = result.client.spec as OidcClient['spec'] & Record<string, unknown>;
  for (const value of Object.values(spec)) expect(value).not.toBe('');
  expect(spec).not.toHaveProperty('extraMetadata');
  expect(spec).not.toHaveProperty('clientUri');
  expect(spec).not.toHaveProperty('contacts');
  await apply(result.yaml);
}

function normalisedUris(value: unknown): string[] {
  return Array.isArray(value) ? value.map((u) => new URL(String(u)).href).sort() : [];
}

function sameList(a: string[], b: string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

/** "POST 2 (201) GET 1 PUT 0": registration API requests so far. */
function countLine(requests: RecordedRequest[], regPath: string): string {
  const api = requests.filter((q) => q.path === regPath || q.path.startsWith(`${regPath}/`));
  const n = (m: string) => api.filter((q) => q.method === m).length;
  const postStatus = api.find((q) => q.method === 'POST')?.status;
  return `POST ${n('POST')} (${postStatus}) GET ${n('GET')} PUT ${n('PUT')}`;
}
