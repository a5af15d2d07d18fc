// `npm run bench:pace [-- --count 1000 --workers 8]`: does the operator keep pace with a user's bulk
// `kubectl apply`? On one fresh control plane (2 CPUs here), in the same run:
//   1. the apply alone: N OidcClients in one `kubectl apply -f`, no operator running;
//   2. the compiled operator (`node dist/cli/main.js run`, built first) watching another namespace,
//      and the same apply there: how much longer the apply takes next to the operator, and when all
//      N application Secrets exist (a watch counts them as they are created).
// The figure of merit is (all Secrets present) / (apply alone); the goal is at most 2. Also prints
// the operator's apiserver writes per client by verb and resource.
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { buildOperator } from '../test/harness/build.js';
import { startControlPlane } from '../test/harness/control-plane.js';
import { installProjectCrds } from '../test/harness/local-stack/crds.js';
import { runWithTeardown, type Teardown } from '../test/harness/local-stack/teardown.js';
import { startOperatorProcess } from '../test/harness/operator-process.js';
import { startRegistrationServer } from '../test/harness/registration-server/index.js';
import { apiserverWrites, summarizeWrites } from './apiserver-writes.js';
import { clientsYaml } from './clients.js';
import { seconds } from './stats.js';

const USAGE = `usage: npm run bench:pace -- [--count N] [--workers N] [--provider-concurrency N] [--extra-args "..."]`;
const GROUP = 'oidc.dcr-operator.dev/v1alpha1';

interface Options {
  count: number;
  workers: number | undefined;
  providerConcurrency: number;
  extraArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      count: { type: 'string', default: '1000' },
      workers: { type: 'string' },
      'provider-concurrency': { type: 'string', default: '16' },
      'extra-args': { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (v: string, flag: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, not "${v}"`);
    return n;
  };
  return {
    count: int(values.count, '--count'),
    workers: values.workers === undefined ? undefined : int(values.workers, '--workers'),
    providerConcurrency: int(values['provider-concurrency'], '--provider-concurrency'),
    extraArgs: values['extra-args'].split(/\s+/).filter(Boolean),
  };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the time the `count`-th Secret matching the selector was added in `namespace`. */
function secretsPresent(kc: KubeConfig, namespace: string, selector: string, count: number) {
  const seen = new Set<string>();
  let abort: AbortController | undefined;
  const done = new Promise<number>((resolve, reject) => {
    void new Watch(kc)
      .watch(
        `/api/v1/namespaces/${namespace}/secrets`,
        { labelSelector: selector },
        (phase: string, obj: { metadata?: { name?: string } }) => {
          if (phase !== 'ADDED' || !obj.metadata?.name) return;
          seen.add(obj.metadata.name);
          if (seen.size === count) resolve(Date.now());
        },
        (err: unknown) => {
          if (seen.size < count) reject(err ?? new Error('watch ended early'));
        },
      )
      .then((c) => {
        abort = c;
      }, reject);
  });
  return { done, seen, stop: () => abort?.abort() };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 after the name.
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/** CPU seconds per process of the run, and this process's (the registration server, the watches). */
async function cpuSample(pids: Record<string, number>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = await cpuSeconds(pid);
  const own = process.cpuUsage();
  out['bench (registration server)'] = (own.user + own.system) / 1e6;
  return out;
}

function cpuDiff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, Number(((b[k] ?? 0) - (a[k] ?? 0)).toFixed(1))]));
}

async function main(teardown: Teardown, opts: Options): Promise<void> {
  progress('[pace] building the operator (npm run build)');
  await buildOperator();
  const cp = await startControlPlane({ log: progress, beforeControllerManager: installProjectCrds });
  teardown.add('control plane', () => cp.stop());
  const provider = await startRegistrationServer({ mode: 'iam' });
  teardown.add('registration server', () => provider.close());
  const kubectl = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r;
  };
  const file = join(tmpdir(), `oidc-pace-${process.pid}.yaml`);
  await writeFile(file, clientsYaml(opts.count, 'iam'));
  teardown.add('input file', async () => {
    const { rm } = await import('node:fs/promises');
    await rm(file, { force: true });
  });

  // ---- 1. the apply alone
  await kubectl(['create', 'namespace', 'alone']);
  progress(`[pace] kubectl apply of ${opts.count} OidcClients, no operator running`);
  const cpuA0 = await cpuSample(cp.pids);
  let t = Date.now();
  await kubectl(['-n', 'alone', 'apply', '-f', file]);
  const aloneMs = Date.now() - t;
  const cpuAlone = cpuDiff(cpuA0, await cpuSample(cp.pids));
  progress(`  ${seconds(aloneMs)} s`);

  // ---- 2. the same next to the operator
  const args = [
    '--namespaces=pace',
    '--resync-interval=10m',
    ...(opts.workers ? [`--max-concurrent-reconciles=${opts.workers}`] : []),
    ...opts.extraArgs,
  ];
  const op = await startOperatorProcess({
    name: 'pace',
    kubeconfigPath: cp.kubeconfigPath,
    compiled: true,
    args,
    startTimeoutMs: 60_000,
  });
  teardown.add('operator', async () => {
    await op.stop();
  });
  await op.waitReady(30_000);
  await kubectl(['create', 'namespace', 'pace']);
  await kubectl(
    ['-n', 'pace', 'apply', '-f', '-'],
    `apiVersion: ${GROUP}\nkind: OidcProvider\nmetadata:\n  name: iam\nspec:\n  issuerUrl: ${provider.issuer}\n  maxConcurrentRequests: ${opts.providerConcurrency}\n`,
  );
  await sleep(1_000);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const appSecrets = secretsPresent(kc, 'pace', 'oidc.dcr-operator.dev/secret-role=credentials', opts.count);
  const mgmtSecrets = secretsPresent(
    kc,
    'pace',
    'oidc.dcr-operator.dev/secret-role=registration',
    opts.count,
  );
  teardown.add('watches', async () => {
    appSecrets.stop();
    mgmtSecrets.stop();
  });
  await sleep(500);
  const writes0 = await apiserverWrites((a) => cp.kubectl(a));
  const pids = { ...cp.pids, operator: op.pid };
  const cpu0 = await cpuSample(pids);
  progress(`[pace] kubectl apply of ${opts.count} OidcClients next to the operator (${args.join(' ')})`);
  t = Date.now();
  await kubectl(['-n', 'pace', 'apply', '-f', file]);
  const withOperatorMs = Date.now() - t;
  const atApply = appSecrets.seen.size;
  progress(`  ${seconds(withOperatorMs)} s; ${atApply} application Secrets by then`);
  const [appAt, mgmtAt] = await Promise.all([appSecrets.done, mgmtSecrets.done]);
  const secretsMs = Math.max(appAt, mgmtAt) - t;
  const cpuWith = cpuDiff(cpu0, await cpuSample(pids));
  await sleep(2_000); // the status writes of the last clients
  const writes = summarizeWrites(writes0, await apiserverWrites((a) => cp.kubectl(a)));
  const posts = provider.requests.filter(
    (q) => q.method === 'POST' && q.path.endsWith('/client-registration'),
  ).length;
  const operatorWrites = Object.fromEntries(
    Object.entries(writes.byVerbResource).filter(([k]) =>
      /^(POST|PUT|PATCH|DELETE) (oidcclients|oidcclients\/status|secrets|events)$/.test(k),
    ),
  );
  delete operatorWrites['POST oidcclients']; // kubectl's creates
  const perClient = Object.values(operatorWrites).reduce((a, n) => a + n, 0) / opts.count;
  const result = {
    count: opts.count,
    operatorArgs: args,
    applyAloneSeconds: seconds(aloneMs),
    applyNextToOperatorSeconds: seconds(withOperatorMs),
    applySlowdown: Number((withOperatorMs / aloneMs).toFixed(2)),
    secretsWhenApplyReturned: atApply,
    allSecretsSeconds: seconds(secretsMs),
    ratioAllSecretsToApplyAlone: Number((secretsMs / aloneMs).toFixed(2)),
    registrations: posts,
    operatorWritesPerClient: Number(perClient.toFixed(2)),
    cpuSecondsApplyAlone: cpuAlone,
    cpuSecondsNextToOperator: cpuWith,
    operatorWrites,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench:pace: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
  process.exit(2);
}
await runWithTeardown('bench:pace', (teardown) => main(teardown, options));
