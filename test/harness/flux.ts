// Flux's source-controller and kustomize-controller (built from their Go modules by
// scripts/build-flux.sh) as processes against the test control plane, and readers for what they report.
// Also the gopher-lua runner that evaluates Argo CD health checks (built by the same script).
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTool, runToolOrThrow } from './exec.js';
import { freePorts } from './ports.js';
import { logTail, type ManagedProcess, startProcess, stopProcess } from './processes.js';
import { kubectl } from './tools.js';
import { waitFor } from './wait.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** Builds (first time: minutes) or finds the Flux binaries, their CRDs and lua-health; returns the folder. */
export async function fluxBinDir(): Promise<string> {
  const r = await runToolOrThrow('bash', [join(ROOT, 'scripts/build-flux.sh')], { timeoutMs: 1_800_000 });
  const dir = r.stdout.trim().split('\n').pop();
  if (!dir) throw new Error('scripts/build-flux.sh printed no folder');
  return dir;
}

/** Installs the CRDs shipped in the controllers' module sources (server-side: they are large). */
export async function installFluxCrds(binDir: string, kubeconfig: string, fluxDir: string): Promise<void> {
  const crds = join(fluxDir, 'crds');
  const files = (await readdir(crds)).filter((f) => f.endsWith('.yaml'));
  for (const f of files) {
    const r = await kubectl(binDir, kubeconfig, [
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      join(crds, f),
    ]);
    if (r.code !== 0) throw new Error(`installing ${f}: ${r.stderr}`);
  }
  for (const f of files) {
    const name = f.replace(/\.yaml$/, '').replace(/^([^_]+)_(.+)$/, '$2.$1');
    const r = await kubectl(binDir, kubeconfig, ['wait', '--for=condition=Established', `crd/${name}`]);
    if (r.code !== 0) throw new Error(`CRD ${name} not established: ${r.stderr}`);
  }
}

export interface Flux {
  /** source-controller's artifact server, http://127.0.0.1:PORT */
  artifactServer: string;
  logDir: string;
  /** Last lines of both controllers' logs (for failure messages). */
  tail(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts both controllers watching all namespaces, leader election off, every listener on loopback.
 * `RUNTIME_NAMESPACE` only names where they would put their own Events/leases.
 */
export async function startFlux(opts: { fluxDir: string; kubeconfigPath: string }): Promise<Flux> {
  const logDir = await mkdtemp(join(tmpdir(), 'flux-'));
  await mkdir(join(logDir, 'artifacts'));
  const [storage, srcMetrics, srcHealth, kusMetrics, kusHealth] = await freePorts(5);
  const env = { KUBECONFIG: opts.kubeconfigPath, RUNTIME_NAMESPACE: 'flux-system' };
  const common = ['--log-level=info', '--log-encoding=json', '--enable-leader-election=false'];
  const procs: ManagedProcess[] = [];
  const start = (name: string, args: string[]) =>
    procs.push(
      startProcess(name, join(opts.fluxDir, name), [...common, ...args], {
        logPath: join(logDir, `${name}.log`),
        env,
      }),
    );
  start('source-controller', [
    `--storage-path=${join(logDir, 'artifacts')}`,
    `--storage-addr=127.0.0.1:${storage}`,
    `--storage-adv-addr=127.0.0.1:${storage}`,
    `--metrics-addr=127.0.0.1:${srcMetrics}`,
    `--health-addr=127.0.0.1:${srcHealth}`,
  ]);
  start('kustomize-controller', [
    `--metrics-addr=127.0.0.1:${kusMetrics}`,
    `--health-addr=127.0.0.1:${kusHealth}`,
    '--no-remote-bases=true',
    '--requeue-dependency=2s',
  ]);
  const tail = async () =>
    (await Promise.all(procs.map(async (p) => `--- ${p.name}\n${await logTail(p.logPath, 30)}`))).join('\n');
  await waitFor(
    async () => {
      for (const port of [srcHealth, kusHealth]) {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        if (res?.status !== 200) return false;
      }
      return true;
    },
    {
      description: 'source-controller and kustomize-controller /readyz',
      timeoutMs: 60_000,
      fatal: () => {
        const dead = procs.find((p) => p.exit);
        return dead ? new Error(`${dead.name} exited: ${JSON.stringify(dead.exit)}`) : undefined;
      },
    },
  ).catch(async (error: Error) => {
    await Promise.all(procs.map((p) => stopProcess(p, 2_000)));
    throw new Error(`${error.message}\n${await tail()}`);
  });
  return {
    artifactServer: `http://127.0.0.1:${storage}`,
    logDir,
    tail,
    stop: async () => {
      await Promise.all(procs.map((p) => stopProcess(p, 5_000)));
      await rm(logDir, { recursive: true, force: true });
    },
  };
}

export interface FluxCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface FluxObject {
  metadata: { name: string; generation?: number; annotations?: Record<string, string> };
  status?: {
    conditions?: FluxCondition[];
    lastAppliedRevision?: string;
    artifact?: { revision?: string; url?: string };
    inventory?: { entries?: { id: string }[] };
  };
}

/** Reads any object as JSON with kubectl (undefined when it does not exist). */
export async function getJson<T>(
  binDir: string,
  kubeconfig: string,
  resource: string,
  namespace?: string,
): Promise<T | undefined> {
  const r = await kubectl(binDir, kubeconfig, ['get', resource, '-o', 'json'], { namespace });
  if (r.code !== 0) {
    if (/NotFound/.test(r.stderr)) return undefined;
    throw new Error(r.stderr);
  }
  return JSON.parse(r.stdout) as T;
}

export function condition(obj: FluxObject | undefined, type: string): FluxCondition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

/** `flux reconcile` without the CLI: the annotation every Flux controller watches. */
export async function requestReconcile(
  binDir: string,
  kubeconfig: string,
  resource: string,
  namespace: string,
): Promise<void> {
  const r = await kubectl(
    binDir,
    kubeconfig,
    ['annotate', '--overwrite', resource, `reconcile.fluxcd.io/requestedAt=${new Date().toISOString()}`],
    { namespace },
  );
  if (r.code !== 0) throw new Error(r.stderr);
}

export interface LuaHealth {
  status: string;
  message: string;
}

/** Runs an Argo CD health check (Lua) over objects with gopher-lua, the VM Argo CD embeds. */
export async function luaHealth(
  fluxDir: string,
  scriptPath: string,
  objects: unknown[],
): Promise<LuaHealth[]> {
  const r = await runTool(join(fluxDir, 'lua-health'), [scriptPath], { input: JSON.stringify(objects) });
  if (r.code !== 0) throw new Error(`lua-health ${scriptPath}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LuaHealth[];
}
