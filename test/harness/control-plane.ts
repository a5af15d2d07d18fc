import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { constants, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { adminRequest, type ClientTls } from './admin-http.js';
import type { ToolResult } from './exec.js';
import { createPki, type Pki } from './pki.js';
import { freePorts } from './ports.js';
import { logTail, type ManagedProcess, onHardExit, startProcess, stopProcess } from './processes.js';
import { helm, type KubectlOptions, kubectl } from './tools.js';
import { waitFor } from './wait.js';

export interface ControlPlane {
  /** Temp dir holding certs, data, logs and the kubeconfig. */
  dir: string;
  /** Folder with kube-apiserver, kube-controller-manager, kubectl, etcd and helm. */
  binDir: string;
  /** Admin kubeconfig (group system:masters) with CA and client cert embedded. */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /**
   * Process ids by binary name (etcd, kube-apiserver, kube-controller-manager), for fault tests on
   * a control plane of their own (e.g. SIGSTOP of the apiserver). Never signal the shared one.
   */
  pids: Readonly<Record<string, number>>;
  /** Milliseconds from startControlPlane() to each milestone, for reporting. */
  startupMs: { etcdHealthy: number; apiserverReady: number; controllerManagerReady?: number; total: number };
  kubectl(args: string[], opts?: KubectlOptions): Promise<ToolResult>;
  helm(args: string[], opts?: { env?: Record<string, string> }): Promise<ToolResult>;
  /**
   * Restarts kube-apiserver on the same port and data (SIGTERM, or SIGKILL when `crash`); resolves
   * with the milliseconds until /readyz answered again. For chaos tests: clients see resets, refused
   * connections and ended watches, as after a real apiserver restart.
   */
  restartApiserver(opts?: { crash?: boolean; downMs?: number }): Promise<number>;
  /** Stops exactly the processes it started; removes `dir` unless KEEP_CONTROL_PLANE=1. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** kube-controller-manager for namespace deletion and ownerReference GC; default true. */
  controllerManager?: boolean;
  log?: (line: string) => void;
  /**
   * Runs once the apiserver is ready and before kube-controller-manager starts: CRDs installed here
   * are known to the garbage collector from its first discovery, so ownerReference GC of custom
   * resources does not wait for its periodic rediscovery.
   */
  beforeControllerManager?: (kubeconfigPath: string, binDir: string) => Promise<void>;
}

const BINARIES = ['kube-apiserver', 'kube-controller-manager', 'kubectl', 'etcd', 'helm'] as const;
/** On a machine loaded far beyond its cores the apiserver can take minutes to start (benchmarks). */
const START_TIMEOUT_MS = Number(process.env.CONTROL_PLANE_START_TIMEOUT_MS) || 60_000;
const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-k8s.sh', import.meta.url));

async function assertBinaries(binDir: string): Promise<void> {
  for (const b of BINARIES) {
    try {
      await access(join(binDir, b), constants.X_OK);
    } catch {
      throw new Error(`${join(binDir, b)} is missing or not executable (run npm run k8s:build)`);
    }
  }
}

/**
 * The folder with the Kubernetes binaries: $K8S_BIN_DIR if set, else the last stdout line of
 * scripts/build-k8s.sh (instant when cached). The script's progress (stderr) is passed through because
 * a cold build takes ~20 minutes and silence would look like a hang.
 */
export async function resolveBinDir(): Promise<string> {
  const fromEnv = process.env.K8S_BIN_DIR;
  if (fromEnv) {
    await assertBinaries(fromEnv);
    return fromEnv;
  }
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error(`${BUILD_SCRIPT} exited ${code}`));
    });
  });
  const binDir = stdout.trimEnd().split('\n').pop()?.trim();
  if (!binDir) throw new Error(`${BUILD_SCRIPT} printed no bin folder`);
  await assertBinaries(binDir);
  return binDir;
}

function base64File(path: string): Promise<string> {
  return readFile(path).then((b) => b.toString('base64'));
}

/** Everything is embedded so the kubeconfig works from any process and any working directory. */
async function writeAdminKubeconfig(path: string, server: string, pki: Pki): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'harness', cluster: { server, 'certificate-authority-data': await base64File(pki.caCert) } },
    ],
    users: [
      {
        name: 'admin',
        user: {
          'client-certificate-data': await base64File(pki.adminCert),
          'client-key-data': await base64File(pki.adminKey),
        },
      },
    ],
    contexts: [{ name: 'harness', context: { cluster: 'harness', user: 'admin', namespace: 'default' } }],
    'current-context': 'harness',
  };
  await writeFile(path, stringify(config), { mode: 0o600 });
}

function diedError(p: ManagedProcess): () => Error | undefined {
  return () =>
    p.exit === undefined
      ? undefined
      : new Error(`${p.name} exited early (code ${p.exit.code}, signal ${p.exit.signal})`);
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.ok;
}

/**
 * Proves the controller manager is connected and its garbage collector has synced: a ConfigMap whose
 * owner never existed is collected. (Probing with a namespace deletion would cost 5 s more: the
 * namespace controller deliberately waits that long before it starts deleting.)
 */
async function probeGarbageCollector(server: string, tls: ClientTls, kcm: ManagedProcess): Promise<void> {
  const name = `harness-gc-probe-${randomBytes(3).toString('hex')}`;
  const path = '/api/v1/namespaces/default/configmaps';
  const created = await adminRequest(server, tls, 'POST', path, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: `${name}-owner`, uid: randomUUID() }],
    },
  });
  if (created.status !== 201)
    throw new Error(`creating GC probe ConfigMap: HTTP ${created.status} ${created.body}`);
  await waitFor(async () => (await adminRequest(server, tls, 'GET', `${path}/${name}`)).status === 404, {
    description: `kube-controller-manager to garbage-collect ConfigMap default/${name}`,
    timeoutMs: START_TIMEOUT_MS,
    intervalMs: 100,
    fatal: diedError(kcm),
  });
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const since = (): number => Date.now() - t0;
  const binDir = await resolveBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'control-plane-'));
  const keep = process.env.KEEP_CONTROL_PLANE === '1';
  // If the runner goes down without stop() (Ctrl-C: vitest runs no global teardown), still remove the dir.
  const forgetDirCleanup = onHardExit(() => {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  });
  const started: ManagedProcess[] = [];
  let waitingOn: ManagedProcess | undefined;

  const stopAll = async (): Promise<void> => {
    // Reverse start order: clients first, so the apiserver and etcd do not log reconnect storms.
    for (const p of [...started].reverse()) await stopProcess(p);
  };

  const launch = (name: string, args: string[]): ManagedProcess => {
    const p = startProcess(name, join(binDir, name), args, { logPath: join(dir, `${name}.log`) });
    started.push(p);
    waitingOn = p;
    log(`[control-plane] started ${name} (pid ${p.pid}), log ${p.logPath}`);
    return p;
  };

  try {
    const pkiDir = join(dir, 'pki');
    await mkdir(pkiDir);
    const pki = await createPki(pkiDir);
    const tls: ClientTls = {
      ca: await readFile(pki.caCert, 'utf8'),
      cert: await readFile(pki.adminCert, 'utf8'),
      key: await readFile(pki.adminKey, 'utf8'),
    };
    const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const server = `https://127.0.0.1:${apiPort}`;

    const etcd = launch('etcd', [
      '--name=harness',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=harness=${peerUrl}`,
      // Throw-away data: skipping fsync makes every apiserver write much faster on slow CI disks.
      '--unsafe-no-fsync=true',
    ]);
    await waitFor(() => httpOk(`${etcdUrl}/health`), {
      description: 'etcd /health',
      timeoutMs: 30_000,
      intervalMs: 100,
      fatal: diedError(etcd),
    });
    const etcdHealthy = since();
    log(`[control-plane] etcd healthy after ${etcdHealthy} ms`);

    const apiserverStart = Date.now();
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The default reconciler refuses a loopback advertise address; nothing needs the endpoints.
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${pki.saPublicKey}`,
      `--service-account-signing-key-file=${pki.saPrivateKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      // KUBE_APISERVER_PROFILING=1 serves /debug/pprof, for CPU profiles of benchmarks.
      `--profiling=${process.env.KUBE_APISERVER_PROFILING === '1'}`,
    ];
    let apiserver = launch('kube-apiserver', apiserverArgs);
    const apiserverReadyz = (p: ManagedProcess) =>
      waitFor(
        async () => {
          const res = await adminRequest(server, tls, 'GET', '/readyz');
          return res.status === 200 || undefined;
        },
        {
          description: 'kube-apiserver /readyz',
          timeoutMs: START_TIMEOUT_MS,
          intervalMs: 200,
          fatal: diedError(p),
        },
      );
    await apiserverReadyz(apiserver);
    const apiserverReady = since();
    log(`[control-plane] kube-apiserver /readyz ok ${Date.now() - apiserverStart} ms after its start`);

    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeAdminKubeconfig(kubeconfigPath, server, pki);
    await waitFor(
      async () => (await adminRequest(server, tls, 'GET', '/api/v1/namespaces/default')).status === 200,
      { description: 'namespace default', timeoutMs: 30_000, intervalMs: 200, fatal: diedError(apiserver) },
    );

    await opts.beforeControllerManager?.(kubeconfigPath, binDir);
    let controllerManagerReady: number | undefined;
    if (opts.controllerManager ?? true) {
      const kcm = launch('kube-controller-manager', [
        `--kubeconfig=${kubeconfigPath}`,
        // Only what the operator relies on: namespace cleanup, ownerReference GC, and legacy SA token
        // Secrets (cheap: two extra flags). No node/pod controllers: there is no kubelet.
        '--controllers=namespace-controller,garbage-collector-controller,serviceaccount-token-controller',
        `--service-account-private-key-file=${pki.saPrivateKey}`,
        `--root-ca-file=${pki.caCert}`,
        '--leader-elect=false',
        '--secure-port=0',
      ]);
      await probeGarbageCollector(server, tls, kcm);
      controllerManagerReady = since();
      log(`[control-plane] kube-controller-manager ready after ${controllerManagerReady} ms`);
    }
    waitingOn = undefined;
    const total = since();
    log(`[control-plane] up at ${server} in ${total} ms (dir ${dir})`);

    let stopped: Promise<void> | undefined;
    return {
      dir,
      binDir,
      kubeconfigPath,
      server,
      pids: Object.fromEntries(started.map((p) => [p.name, p.pid])),
      startupMs: { etcdHealthy, apiserverReady, controllerManagerReady, total },
      kubectl: (args, kOpts) => kubectl(binDir, kubeconfigPath, args, kOpts),
      helm: (args, hOpts) => helm(binDir, kubeconfigPath, args, hOpts),
      restartApiserver: async (rOpts = {}) => {
        const t = Date.now();
        if (rOpts.crash) {
          process.kill(-apiserver.pid, 'SIGKILL');
          await apiserver.exited;
        } else {
          await stopProcess(apiserver);
        }
        if (rOpts.downMs) await new Promise((r) => setTimeout(r, rOpts.downMs));
        // Replaced in place so stop() (reverse start order) still stops it before etcd.
        const index = started.indexOf(apiserver);
        apiserver = startProcess('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs, {
          logPath: join(dir, 'kube-apiserver.log'),
        });
        started[index] = apiserver;
        await apiserverReadyz(apiserver);
        log(`[control-plane] kube-apiserver restarted (pid ${apiserver.pid}) in ${Date.now() - t} ms`);
        return Date.now() - t;
      },
      stop: () => {
        stopped ??= (async () => {
          await stopAll();
          forgetDirCleanup();
          if (keep) log(`[control-plane] kept ${dir} (KEEP_CONTROL_PLANE=1)`);
          else await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (error) {
    // Name the process that failed and show its log: "timed out" alone is undebuggable in CI.
    const culprit = started.find((p) => p.exit !== undefined) ?? waitingOn;
    const tail = culprit
      ? `\n--- last lines of ${culprit.logPath} ---\n${await logTail(culprit.logPath)}`
      : '';
    await stopAll();
    forgetDirCleanup();
    if (!keep) await rm(dir, { recursive: true, force: true });
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`control plane failed to start: ${message}${tail}`, { cause: error });
  }
}
