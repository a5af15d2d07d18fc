// Credential rotation on real parts (kube-apiserver + node-oidc-provider): on request (the rotate
// annotation), on schedule (spec.rotation.every) and before client_secret_expires_at. Each time:
// exactly one new client, the application Secret switched to it (its credentials authenticate), the
// previous client kept at the provider for the overlap and deleted after it, status.rotation telling
// which and when, no writes while waiting. Deleting the OidcClient during the overlap deletes both;
// a failing DELETE of the previous client is retried and never holds up the new one.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
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
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('credential rotation', () => {
  let server: RegistrationServer;
  let expiring: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const run = async (args: string[]) => {
    const res = await kubectl(binDir, kubeconfigPath, args, { namespace: ns.name });
    expect(res.code, res.stderr).toBe(0);
  };
  const postsOf = (s: RegistrationServer, name: string) =>
    s.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.clientName === name,
    ).length;
  /** Clients of this name at the provider. */
  const liveOf = async (s: RegistrationServer, name: string) =>
    (await s.store.list()).filter((c) => c.metadata.client_name === name).map((c) => c.clientId);
  const deleteAt = (s: RegistrationServer, id: string) =>
    s.requests.find((q) => q.method === 'DELETE' && q.path.endsWith(`/${id}`) && q.status < 300)?.at;
  const reasons = async (name: string) => (await r.events(name)).map((e) => e.reason);
  /** Waits for a client other than `oldId` in the status, with the previous one still kept. */
  const waitRotated = (name: string, oldId: string, timeoutMs = 15_000) =>
    waitFor(
      async () => {
        const c = await r.client(name);
        return c?.status?.clientId !== oldId && c?.status?.rotation?.previousClientId === oldId
          ? c
          : undefined;
      },
      { description: `${name}: a new client with ${oldId} kept as the previous one`, timeoutMs },
    );

  beforeAll(async () => {
    [server, expiring] = await Promise.all([
      startRegistrationServer(),
      startRegistrationServer({ dialect: { clientSecretLifetimeSeconds: 8 } }),
    ]);
    ns = await createTestNamespace(kc, 'rotation');
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name });
    await apply(providerYaml('iam', server.issuer));
    await apply(providerYaml('expiring', expiring.issuer));
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await Promise.all([server?.close(), expiring?.close()]);
  });

  it('on request: one new client, the Secret switched, the previous one kept for the overlap, then deleted', async () => {
    await apply(
      clientYaml('web', 'iam', `  redirectUris: [https://web.example.org/cb]\n  rotation: { overlap: 4s }\n`),
    );
    const oldId = (await r.waitReady('web')).status?.clientId as string;
    expect(postsOf(server, 'web')).toBe(1);
    const requestedAt = Date.now();
    const writesBefore = op.writes.length;
    await run(['annotate', 'oidcclient', 'web', 'oidc.dcr-operator.dev/rotate=2026-01-01']);

    const during = await waitRotated('web', oldId);
    const newId = during.status?.clientId as string;
    expect(postsOf(server, 'web')).toBe(2);
    // The application Secret names the new client, whose credentials work; both exist meanwhile.
    const app = await r.secretValues('web-oidc-client');
    expect(app?.client_id).toBe(newId);
    expect(await credentialsAuthenticate(server.tokenEndpoint, newId, app?.client_secret as string)).toBe(
      true,
    );
    expect((await liveOf(server, 'web')).sort()).toEqual([newId, oldId].sort());
    const rotation = during.status?.rotation;
    const deletionTime = Date.parse(rotation?.previousDeletionTime as string);
    expect(deletionTime).toBeGreaterThan(requestedAt + 3_000);
    expect(deletionTime).toBeLessThan(Date.now() + 4_500);
    expect(rotation?.lastRotationTime).toBeTruthy();
    expect(rotation?.lastRequest).toBe('2026-01-01');
    expect(r.condition(during, 'Ready')?.status).toBe('True');
    const mgmt = await r.secretValues('web-oidc-registration');
    expect(mgmt?.previous_client_id).toBe(oldId);
    expect(mgmt?.client_id).toBe(newId);

    // Idle while waiting: no writes to the apiserver (Events aside) until the overlap ends.
    await sleep(300);
    const writes = () => op.writes.filter((w) => !w.includes('/events')).length;
    const before = writes();
    await sleep(Math.max(0, deletionTime - Date.now() - 400));
    expect(await server.store.get(oldId)).toBeDefined();
    expect(writes()).toBe(before);

    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'previous client deleted at the provider',
      timeoutMs: 10_000,
    });
    expect(deleteAt(server, oldId)).toBeGreaterThanOrEqual(deletionTime);
    const after = await waitFor(
      async () => {
        const c = await r.client('web');
        return c?.status?.rotation && !c.status.rotation.previousClientId ? c : undefined;
      },
      { description: 'status without a previous client', timeoutMs: 5_000 },
    );
    expect(after.status?.clientId).toBe(newId);
    expect(after.status?.rotation?.lastRequest).toBe('2026-01-01');
    expect(after.status?.rotation?.previousDeletionTime).toBeUndefined();
    expect(await r.secretValues('web-oidc-registration')).not.toHaveProperty('previous_client_id');
    expect(await liveOf(server, 'web')).toEqual([newId]);
    // What one rotation costs the apiserver, Events aside.
    const spent = op.writes.slice(writesBefore).filter((w) => !w.includes('/events'));
    console.log(`[rotation] ${spent.length} writes for one rotation: ${spent.join(', ')}`);
    expect(spent.length).toBeLessThanOrEqual(8);
    const events = await r.events('web');
    for (const reason of ['RotationStarted', 'Rotated', 'PreviousClientDeleted'])
      expect(
        events.some((e) => e.reason === reason && e.type === 'Normal'),
        reason,
      ).toBe(true);
    expect(events.find((e) => e.reason === 'PreviousClientDeleted')?.message).toContain(oldId);

    // The same value again asks for nothing; a new one rotates again.
    await run(['annotate', '--overwrite', 'oidcclient', 'web', 'oidc.dcr-operator.dev/rotate=2026-01-01']);
    await sleep(1_500);
    expect(postsOf(server, 'web')).toBe(2);
  });

  it('a check-now during the overlap is carried out right after it', async () => {
    await apply(
      clientYaml(
        'later',
        'iam',
        `  redirectUris: [https://later.example.org/cb]\n  rotation: { overlap: 3s }\n`,
      ),
    );
    const oldId = (await r.waitReady('later')).status?.clientId as string;
    await run(['annotate', 'oidcclient', 'later', 'oidc.dcr-operator.dev/rotate=1']);
    const during = await waitRotated('later', oldId);
    const newId = during.status?.clientId as string;
    const deletionTime = Date.parse(during.status?.rotation?.previousDeletionTime as string);
    const gets = () => server.requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/${newId}`));
    await run(['annotate', 'oidcclient', 'later', 'oidc.dcr-operator.dev/check-now=1']);
    await sleep(500);
    if (Date.now() < deletionTime) {
      expect((await r.client('later'))?.status?.checkNowHandled).toBeUndefined();
      expect(gets()).toEqual([]);
    }
    const checked = await waitFor(
      async () => {
        const c = await r.client('later');
        return c?.status?.checkNowHandled === '1' ? c : undefined;
      },
      { description: 'the check-now carried out after the overlap', timeoutMs: 15_000 },
    );
    expect(checked.status?.rotation?.previousClientId).toBeUndefined();
    expect(gets().length).toBeGreaterThanOrEqual(1);
    expect(gets()[0]?.at).toBeGreaterThanOrEqual(deletionTime);
  });

  it('reregister is rotate without an overlap: the previous client goes right after the switch', async () => {
    await apply(
      clientYaml('now', 'iam', `  redirectUris: [https://now.example.org/cb]\n  rotation: { overlap: 1h }\n`),
    );
    const oldId = (await r.waitReady('now')).status?.clientId as string;
    await run(['annotate', 'oidcclient', 'now', 'oidc.dcr-operator.dev/reregister=leaked']);
    const renewed = await waitFor(
      async () => {
        const c = await r.client('now');
        return c?.status?.clientId !== oldId && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
      },
      { description: 'a new client', timeoutMs: 15_000 },
    );
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'the previous client deleted at once',
      timeoutMs: 5_000,
    });
    expect(postsOf(server, 'now')).toBe(2);
    expect((await r.secretValues('now-oidc-client'))?.client_id).toBe(renewed.status?.clientId);
    expect(await reasons('now')).toEqual(
      expect.arrayContaining(['RotationStarted', 'Rotated', 'PreviousClientDeleted']),
    );
  });

  it('on schedule: spec.rotation.every replaces the client, and no schedule stops it', async () => {
    const spec = `  redirectUris: [https://sched.example.org/cb]\n`;
    await apply(clientYaml('sched', 'iam', `${spec}  rotation: { every: 5s, overlap: 1s }\n`));
    const first = await r.waitReady('sched');
    const oldId = first.status?.clientId as string;
    const next = Date.parse(first.status?.rotation?.nextRotationTime as string);
    expect(next - Date.parse(first.metadata.creationTimestamp as unknown as string)).toBeLessThan(8_000);
    expect(next).toBeGreaterThan(Date.now());
    const rotated = await waitRotated('sched', oldId, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(next);
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'the scheduled rotation deleted the previous client',
      timeoutMs: 5_000,
    });
    // Stop the schedule before the next one: the client stays.
    await apply(clientYaml('sched', 'iam', spec));
    const stopped = await waitFor(
      async () => {
        const c = await r.client('sched');
        return c?.status?.observedGeneration === c?.metadata.generation &&
          !c?.status?.rotation?.nextRotationTime
          ? c
          : undefined;
      },
      { description: 'no next rotation without a schedule', timeoutMs: 10_000 },
    );
    const posts = postsOf(server, 'sched');
    expect(posts).toBeGreaterThanOrEqual(2);
    // Each registration lives its 5 s (the clock starts when it is stored, so a little more).
    const times = server.requests
      .filter(
        (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.clientName === 'sched',
      )
      .map((q) => q.at);
    for (let i = 1; i < times.length; i++)
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(5_000);
    await sleep(6_000);
    expect(postsOf(server, 'sched')).toBe(posts);
    expect(await liveOf(server, 'sched')).toEqual([stopped.status?.clientId]);
    expect(rotated.status?.clientId).not.toBe(oldId);
    const started = (await r.events('sched')).find((e) => e.reason === 'RotationStarted');
    expect(started?.message).toContain('scheduled (every 5s)');
  });

  it('before client_secret_expires_at, and deleting during the overlap deletes both clients', async () => {
    await apply(
      clientYaml(
        'exp',
        'expiring',
        `  redirectUris: [https://exp.example.org/cb]\n  rotation: { overlap: 30s }\n`,
      ),
    );
    const first = await r.waitReady('exp');
    const oldId = first.status?.clientId as string;
    const expiresAt = (first.status?.clientSecretExpiresAt as number) * 1000;
    expect(expiresAt).toBeGreaterThan(Date.now());
    // 8 s lifetime, 30 s overlap: at half-life, not at once.
    const next = Date.parse(first.status?.rotation?.nextRotationTime as string);
    expect(expiresAt - next).toBeGreaterThan(3_000);
    const during = await waitRotated('exp', oldId, 15_000);
    const newId = during.status?.clientId as string;
    expect(during.status?.clientSecretExpiresAt as number).toBeGreaterThan(expiresAt / 1000);
    expect((await r.events('exp')).find((e) => e.reason === 'RotationStarted')?.message).toContain(
      'client_secret expires at',
    );
    expect(postsOf(expiring, 'exp')).toBe(2);
    expect((await liveOf(expiring, 'exp')).sort()).toEqual([newId, oldId].sort());

    await run(['delete', 'oidcclient', 'exp', '--wait=true', '--timeout=20s']);
    expect(await liveOf(expiring, 'exp')).toEqual([]);
    expect(postsOf(expiring, 'exp')).toBe(2);
  });

  it('deletionPolicy Orphan during the overlap leaves both clients, their tokens kept in the management Secret', async () => {
    await apply(
      clientYaml(
        'keep',
        'iam',
        `  redirectUris: [https://keep.example.org/cb]\n  deletionPolicy: Orphan\n  rotation: { overlap: 1h }\n`,
      ),
    );
    const oldId = (await r.waitReady('keep')).status?.clientId as string;
    await run(['annotate', 'oidcclient', 'keep', 'oidc.dcr-operator.dev/rotate=1']);
    const newId = (await waitRotated('keep', oldId)).status?.clientId as string;
    await run(['delete', 'oidcclient', 'keep', '--wait=true', '--timeout=20s']);
    expect((await liveOf(server, 'keep')).sort()).toEqual([newId, oldId].sort());
    const kept = await r.secret('keep-oidc-registration');
    expect(kept?.metadata?.labels?.['oidc.dcr-operator.dev/orphaned']).toBe('true');
    const values = await r.secretValues('keep-oidc-registration');
    expect(values?.client_id).toBe(newId);
    expect(values?.previous_client_id).toBe(oldId);
    expect(values?.previous_registration_access_token).toBeTruthy();
  });

  it('a failing DELETE of the previous client is retried with a condition and an Event; the new client is in use', async () => {
    await apply(
      clientYaml(
        'sticky',
        'iam',
        `  redirectUris: [https://sticky.example.org/cb]\n  rotation: { overlap: 1s }\n`,
      ),
    );
    const oldId = (await r.waitReady('sticky')).status?.clientId as string;
    server.faults.add({
      method: 'DELETE',
      pathPattern: new RegExp(`/client-registration/${oldId}$`),
      status: 503,
      times: Infinity,
    });
    await run(['annotate', 'oidcclient', 'sticky', 'oidc.dcr-operator.dev/rotate=now']);
    const failing = await waitFor(
      async () => {
        const c = await r.client('sticky');
        return r.condition(c, 'PreviousClientDeleted')?.status === 'False' ? c : undefined;
      },
      { description: 'PreviousClientDeleted=False', timeoutMs: 20_000 },
    );
    const newId = failing.status?.clientId as string;
    expect(newId).not.toBe(oldId);
    expect(r.condition(failing, 'Ready')?.status).toBe('True');
    expect(r.condition(failing, 'PreviousClientDeleted')?.reason).toBe('PreviousClientDeleteFailed');
    const app = await r.secretValues('sticky-oidc-client');
    expect(app?.client_id).toBe(newId);
    expect(await credentialsAuthenticate(server.tokenEndpoint, newId, app?.client_secret as string)).toBe(
      true,
    );
    const warning = (await r.events('sticky')).find((e) => e.reason === 'PreviousClientDeleteFailed');
    expect(warning?.type).toBe('Warning');
    expect(warning?.message).toContain(oldId);
    expect(await server.store.get(oldId)).toBeDefined();

    server.faults.clear();
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'previous client deleted once the provider recovers',
      timeoutMs: 20_000,
    });
    const done = await waitFor(
      async () => {
        const c = await r.client('sticky');
        return !r.condition(c, 'PreviousClientDeleted') && !c?.status?.rotation?.previousClientId
          ? c
          : undefined;
      },
      { description: 'the condition gone with the previous client', timeoutMs: 10_000 },
    );
    expect((done as OidcClient).status?.clientId).toBe(newId);
    expect(postsOf(server, 'sticky')).toBe(2);
  });

  it('refuses a malformed duration and a schedule within the overlap at apply time', async () => {
    const applyBad = (rotation: string) =>
      kubectl(binDir, kubeconfigPath, ['apply', '-f', '-'], {
        namespace: ns.name,
        input: clientYaml(
          'bad',
          'iam',
          `  redirectUris: [https://bad.example.org/cb]\n  rotation: ${rotation}\n`,
        ),
      });
    const malformed = await applyBad('{ every: 1 day }');
    expect(malformed.code).not.toBe(0);
    expect(malformed.stderr).toContain('spec.rotation.every');
    // 5m is a duration, but not longer than the default overlap (10m): the CRD's CEL rule says so.
    const short = await applyBad('{ every: 5m }');
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain(
      'spec.rotation.every: Invalid value: must be longer than the overlap (10m, the default)',
    );
    expect(await r.client('bad')).toBeUndefined();
    expect(postsOf(server, 'bad')).toBe(0);
  });
});
