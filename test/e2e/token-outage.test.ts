// Tokens never lost: a provider that rotates the registration access token on every call (Keycloak;
// the registration server's 'rotating' mode) while the apiserver is frozen (SIGSTOP) for 15 s. The
// operator keeps the newest token per client in memory, uses it for the next call and writes it
// until stored. Afterwards every client is manageable with the token in its management Secret.
//
// This file starts a control plane of its own: the shared one serves other files in parallel and
// must never be stopped.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectlApply,
  type TestNamespace,
} from '../harness/kube.js';
import { installProjectCrds } from '../harness/local-stack/crds.js';
import { clientYaml, GROUP, OidcReader, providerYaml, VERSION } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const N = 10;
const PAUSE_MS = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rotated registration access tokens survive a frozen API server', () => {
  let cp: ControlPlane;
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  let paused = false;
  const names = Array.from({ length: N }, (_, i) => `rot-${i}`);

  const signalApiserver = (signal: NodeJS.Signals) => {
    const pid = cp.pids['kube-apiserver'];
    if (pid === undefined) throw new Error('no kube-apiserver pid');
    process.kill(pid, signal);
    paused = signal === 'SIGSTOP';
  };

  beforeAll(async () => {
    [cp, server] = await Promise.all([
      startControlPlane({ controllerManager: false, beforeControllerManager: installProjectCrds }),
      startRegistrationServer({ mode: 'rotating' }),
    ]);
    const kc = kubeConfigFromFile(cp.kubeconfigPath);
    ns = await createTestNamespace(kc, 'token-outage');
    r = new OidcReader(kc, ns.name);
    await kubectlApply(cp.binDir, cp.kubeconfigPath, providerYaml('kc', server.issuer), ns.name);
  }, 120_000);

  afterAll(async () => {
    if (paused) signalApiserver('SIGCONT');
    await op?.stop();
    await server?.close();
    await cp?.stop();
  });

  it('keeps every rotated token through a 15 s SIGSTOP of kube-apiserver', async () => {
    op = await startInProcessOperator({
      kubeconfigPath: cp.kubeconfigPath,
      namespace: ns.name,
      // A drift check (a GET, which rotates the token) about every second per client.
      resyncIntervalMs: 1_000,
      // Requests to the frozen apiserver time out quickly, so writes fail many times over.
      kubeTimeoutMs: 2_000,
    });
    await kubectlApply(
      cp.binDir,
      cp.kubeconfigPath,
      names.map((n) => clientYaml(n, 'kc', `  redirectUris: [https://${n}.example.org/cb]\n`)).join('---\n'),
      ns.name,
    );
    for (const n of names) await r.waitReady(n, { timeoutMs: 30_000 });
    const before = server.requests.length;

    signalApiserver('SIGSTOP');
    const pausedAt = Date.now();
    await sleep(PAUSE_MS);
    signalApiserver('SIGCONT');
    const during = server.requests
      .slice(before)
      .filter((q) => q.at >= pausedAt && q.at < pausedAt + PAUSE_MS);
    const rotations = during.filter((q) => q.method === 'GET' && q.status === 200).length;

    // Catch up: a few more drift checks per client, then a graceful stop writes what is pending.
    await sleep(5_000);
    for (const n of names) await r.waitReady(n, { timeoutMs: 60_000 });
    await op.stop();
    op = undefined;

    // Every client is still manageable with the token stored in its management Secret.
    let lost = 0;
    for (const n of names) {
      const mgmt = await r.secretValues(`${n}-oidc-registration`);
      const res = await fetch(mgmt?.registration_client_uri ?? '', {
        headers: { authorization: `Bearer ${mgmt?.registration_access_token}`, accept: 'application/json' },
      });
      if (res.status !== 200) lost++;
      await res.body?.cancel();
    }
    const custom = kubeConfigFromFile(cp.kubeconfigPath).makeApiClient(CustomObjectsApi);
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'oidcclients',
    })) as { items: OidcClient[] };
    const rejected = list.items.filter((c) =>
      c.status?.conditions?.some((x) => x.reason === 'RegistrationTokenRejected'),
    ).length;
    const rejectedEvents = (await Promise.all(names.map((n) => r.events(n))))
      .flat()
      .filter((e) => e.reason === 'RegistrationTokenRejected').length;
    console.info(
      `[token-outage] ${N} clients, apiserver SIGSTOPped ${PAUSE_MS / 1000} s: ${rotations} token rotations at the provider during the pause; tokens lost: ${lost}; RegistrationTokenRejected: ${rejected} clients, ${rejectedEvents} events`,
    );
    // The pause really rotated tokens that could not be stored at the time (about one per client;
    // fewer drift checks fit into the pause on a loaded machine).
    expect(rotations).toBeGreaterThanOrEqual(N / 2);
    expect(lost).toBe(0);
    expect(rejected).toBe(0);
    expect(rejectedEvents).toBe(0);
    // No client was replaced to get out of it.
    expect(
      server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')),
    ).toHaveLength(N);
  });
});
