// Rotation is crash-safe: the operator runs as its own process and is SIGKILLed at the worst
// moments, then started again. Throughout, a sampler checks what users depend on: the application
// Secret always names a client the provider still has, and there are never more than two clients.
// Each rotation ends with one client and exactly one extra registration (no second POST).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  applyDenyPolicy,
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  removeDenyPolicy,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, credentialsAuthenticate, OidcReader, providerYaml } from '../harness/oidc.js';
import { type OperatorProcess, startOperatorProcess, stopAll } from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rotation across operator crashes', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let r: OidcReader;
  const procs: OperatorProcess[] = [];
  const policy = `rotation-crash-${process.pid}`;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const run = async (args: string[]) => {
    const res = await kubectl(binDir, kubeconfigPath, args, { namespace: ns.name });
    expect(res.code, res.stderr).toBe(0);
  };
  const postsOf = (name: string) =>
    server.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.clientName === name,
    ).length;
  const liveOf = async (name: string) =>
    (await server.store.list()).filter((c) => c.metadata.client_name === name).map((c) => c.clientId);

  async function start(): Promise<OperatorProcess> {
    const p = await startOperatorProcess({
      name: `rotation-${procs.length}`,
      kubeconfigPath,
      args: [`--namespaces=${ns.name}`, '--resync-interval=10m'],
      startTimeoutMs: 60_000,
    });
    procs.push(p);
    return p;
  }

  async function kill(p: OperatorProcess): Promise<void> {
    p.kill('SIGKILL');
    expect((await p.exited).signal).toBe('SIGKILL');
  }

  /** Samples the invariants for `name` until stopped; returns what it saw wrong. */
  function sampler(name: string): { stop: () => Promise<string[]> } {
    const problems: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const app = await r.secretValues(`${name}-oidc-client`).catch(() => undefined);
        const live = await liveOf(name);
        if (app?.client_id && !live.includes(app.client_id))
          problems.push(
            `application Secret names ${app.client_id}, not at the provider (${live.join(', ')})`,
          );
        if (live.length > 2) problems.push(`${live.length} clients at the provider: ${live.join(', ')}`);
        await sleep(100);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return problems;
      },
    };
  }

  beforeAll(async () => {
    server = await startRegistrationServer();
    ns = await createTestNamespace(kc, 'rotation-crash');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
  });

  afterAll(async () => {
    await stopAll(procs);
    await removeDenyPolicy(binDir, kubeconfigPath, policy);
    await ns?.cleanup();
    await server?.close();
  });

  it('killed after the new client was stored but before the application Secret switched', async () => {
    let op = await start();
    await apply(
      clientYaml(
        'crash',
        'iam',
        `  redirectUris: [https://crash.example.org/cb]\n  rotation: { overlap: 3s }\n`,
      ),
    );
    const oldId = (await r.waitReady('crash', { timeoutMs: 60_000 })).status?.clientId as string;
    const watch = sampler('crash');

    // An admission policy refuses updates of the application Secret: the operator stops right after
    // storing the new registration, where a crash hurts most.
    await applyDenyPolicy(binDir, kubeconfigPath, {
      name: policy,
      namespace: ns.name,
      operations: ['UPDATE'],
      resources: ['secrets'],
      expression: "object.metadata.name != 'crash-oidc-client'",
      message: 'the application Secret is frozen',
    });
    const probe = () =>
      kubectl(
        binDir,
        kubeconfigPath,
        ['annotate', '--overwrite', '--dry-run=server', 'secret', 'crash-oidc-client', 'probe=1'],
        { namespace: ns.name },
      );
    await waitFor(async () => (await probe()).stderr.includes('frozen'), {
      description: 'the admission policy to freeze the application Secret',
      timeoutMs: 30_000,
    });

    await run(['annotate', 'oidcclient', 'crash', 'oidc.dcr-operator.dev/rotate=1']);
    const stored = await waitFor(
      async () => {
        const m = await r.secretValues('crash-oidc-registration');
        return m?.previous_client_id === oldId && m.client_id && m.client_id !== oldId ? m : undefined;
      },
      { description: 'the new client stored beside the previous one', timeoutMs: 30_000 },
    );
    const newId = stored.client_id as string;
    // The switch was tried and refused: the application still has the old, working client.
    await waitFor(
      async () =>
        (await r.events('crash')).some((e) => e.reason === 'RotationStarted') &&
        r.condition(await r.client('crash'), 'Ready')?.status === 'False',
      { description: 'the refused switch reported', timeoutMs: 30_000 },
    );
    expect((await r.secretValues('crash-oidc-client'))?.client_id).toBe(oldId);
    expect((await liveOf('crash')).sort()).toEqual([newId, oldId].sort());
    await kill(op);

    await run(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', policy]);
    await waitFor(async () => (await probe()).code === 0, {
      description: 'the application Secret writable again',
      timeoutMs: 30_000,
    });
    op = await start();
    await waitFor(async () => (await r.secretValues('crash-oidc-client'))?.client_id === newId, {
      description: 'the application Secret switched after the restart',
      timeoutMs: 60_000,
    });
    // The overlap counts from the switch: the previous client is still there.
    expect(await server.store.get(oldId)).toBeDefined();
    const app = await r.secretValues('crash-oidc-client');
    expect(await credentialsAuthenticate(server.tokenEndpoint, newId, app?.client_secret as string)).toBe(
      true,
    );
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'the previous client deleted after the overlap',
      timeoutMs: 30_000,
    });
    expect(await liveOf('crash')).toEqual([newId]);
    expect(postsOf('crash')).toBe(2);
    expect(await watch.stop()).toEqual([]);
    await op.stop();
  });

  it('killed during the overlap: the previous client still goes at its time, nothing is registered again', async () => {
    let op = await start();
    await apply(
      clientYaml('mid', 'iam', `  redirectUris: [https://mid.example.org/cb]\n  rotation: { overlap: 8s }\n`),
    );
    const oldId = (await r.waitReady('mid', { timeoutMs: 60_000 })).status?.clientId as string;
    const watch = sampler('mid');
    await run(['annotate', 'oidcclient', 'mid', 'oidc.dcr-operator.dev/rotate=1']);
    const during = await waitFor(
      async () => {
        const c = await r.client('mid');
        return c?.status?.rotation?.previousClientId === oldId && c.status.clientId !== oldId ? c : undefined;
      },
      { description: 'the overlap started', timeoutMs: 30_000 },
    );
    const newId = during.status?.clientId as string;
    const deletionTime = Date.parse(during.status?.rotation?.previousDeletionTime as string);
    await kill(op);
    expect((await r.secretValues('mid-oidc-client'))?.client_id).toBe(newId);
    op = await start();
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'the previous client deleted after the restart',
      timeoutMs: 60_000,
    });
    const deleted = server.requests.find(
      (q) => q.method === 'DELETE' && q.path.endsWith(`/${oldId}`) && q.status < 300,
    );
    expect(deleted?.at).toBeGreaterThanOrEqual(deletionTime);
    expect(await liveOf('mid')).toEqual([newId]);
    expect(postsOf('mid')).toBe(2);
    await waitFor(async () => !(await r.secretValues('mid-oidc-registration'))?.previous_client_id, {
      description: 'the previous client dropped from the management Secret',
      timeoutMs: 10_000,
    });
    expect(await watch.stop()).toEqual([]);
    await op.stop();
  });
});
