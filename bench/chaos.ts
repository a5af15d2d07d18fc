// `npm run chaos [-- --clients 1000 --minutes 5]`: the operator under chaos. The real control plane,
// the IAM-like registration server with fault injection, and two replicas of the COMPILED operator
// (npm run build; node dist/cli/main.js run) with leader election behind an apiserver proxy. While
// OidcClients are applied in waves, edited and deleted with kubectl, the provider answers 5xx, 429,
// resets, delays, times out, serves HTML 404s and loses registration answers; operator replicas are
// SIGKILLed (also right after a registration was answered), handed over, the apiserver is restarted
// and watches expire. Then every invariant is checked in the provider's store and the apiserver.
// Writes .cache/chaos/last.json (and the operators' logs next to it); exits 1 when one fails.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/operator/flags.js';
import { defaultCounts } from '../test/harness/chaos/plan.js';
import { renderSummary, writeReport } from '../test/harness/chaos/report.js';
import { runChaos } from '../test/harness/chaos/run.js';
import { startControlPlane } from '../test/harness/control-plane.js';
import { runTool } from '../test/harness/exec.js';
import { installProjectCrds } from '../test/harness/local-stack/crds.js';
import { locateBinaries } from '../test/harness/local-stack/index.js';
import { runWithTeardown, type Teardown } from '../test/harness/local-stack/teardown.js';
import { startRegistrationServer } from '../test/harness/registration-server/index.js';

const USAGE = `usage: npm run chaos -- [options]

  --clients N                OidcClients, applied in waves (default 1000)
  --minutes N                length of the chaos phase (default 5; fractions allowed)
  --seed N                   PRNG seed of the plan (default: random, printed and in the report)
  --workers N                operator --max-concurrent-reconciles (default 16)
  --provider-concurrency N   OidcProvider spec.maxConcurrentRequests (default 16)
  --resync-interval D        operator drift-check interval (default 30s)
  --provider-timeout D       operator per-request provider timeout (default 4s)
  --lease-duration D         leader election lease (default 4s)
  --settle-timeout D         how long to wait for every OidcClient to be Ready after the chaos
                             (default 5m + 0.3 s per client)
  --no-build                 skip npm run build (dist/ must be current)
  --out FILE                 JSON report (default .cache/chaos/last.json)`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Options {
  clients: number;
  minutes: number;
  seed: number;
  workers: number;
  providerConcurrency: number;
  resyncMs: number;
  providerTimeoutMs: number;
  leaseMs: number;
  settleTimeoutMs: number;
  build: boolean;
  out: string;
}

function num(value: string, flag: string, min: number, integer = true): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new Error(`${flag}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, not "${value}"`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      clients: { type: 'string', default: '1000' },
      minutes: { type: 'string', default: '5' },
      seed: { type: 'string' },
      workers: { type: 'string', default: '16' },
      'provider-concurrency': { type: 'string', default: '16' },
      'resync-interval': { type: 'string', default: '30s' },
      'provider-timeout': { type: 'string', default: '4s' },
      'lease-duration': { type: 'string', default: '4s' },
      'settle-timeout': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, '.cache/chaos/last.json') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const clients = num(values.clients, '--clients', 1);
  return {
    clients,
    minutes: num(values.minutes, '--minutes', 0.1, false),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num(values.seed, '--seed', 0),
    workers: num(values.workers, '--workers', 1),
    providerConcurrency: num(values['provider-concurrency'], '--provider-concurrency', 1),
    resyncMs: parseDuration(values['resync-interval'], '--resync-interval'),
    providerTimeoutMs: parseDuration(values['provider-timeout'], '--provider-timeout'),
    leaseMs: parseDuration(values['lease-duration'], '--lease-duration'),
    settleTimeoutMs: values['settle-timeout']
      ? parseDuration(values['settle-timeout'], '--settle-timeout')
      : 300_000 + clients * 300,
    build: !values['no-build'],
    out: values.out,
  };
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(teardown: Teardown, opts: Options): Promise<void> {
  progress(`[chaos] ${opts.clients} clients, ${opts.minutes} min, seed ${opts.seed}`);
  if (opts.build) {
    progress('[chaos] npm run build');
    const built = await runTool('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 300_000 });
    if (built.code !== 0) throw new Error(`npm run build failed:\n${built.stdout}${built.stderr}`);
  }
  await locateBinaries(progress);
  const cp = await startControlPlane({ log: progress, beforeControllerManager: installProjectCrds });
  teardown.add('control plane', () => cp.stop());
  const provider = await startRegistrationServer({ mode: 'iam' });
  teardown.add('registration server', () => provider.close());
  progress(`[provider] IAM-like registration server at ${provider.issuer}`);
  const namespace = 'chaos';
  const ns = await cp.kubectl(['create', 'namespace', namespace]);
  if (ns.code !== 0) throw new Error(`kubectl create namespace: ${ns.stderr}`);

  const logDir = join(ROOT, '.cache/chaos');
  await rm(join(logDir, 'operators.log'), { force: true });
  await mkdir(logDir, { recursive: true });
  const logs: string[] = [];
  const report = await runChaos(
    {
      adminKubeconfig: cp.kubeconfigPath,
      kubectl: (args, input) => cp.kubectl(args, { input }),
      provider,
      restartApiserver: () => cp.restartApiserver(),
      workDir: cp.dir,
      log: progress,
      onOperatorLog: (identity, text) => logs.push(`==> ${identity} <==\n${text}`),
    },
    {
      clients: opts.clients,
      durationMs: Math.round(opts.minutes * 60_000),
      counts: defaultCounts(opts.clients, opts.minutes),
      seed: opts.seed,
      namespace,
      workers: opts.workers,
      providerConcurrency: opts.providerConcurrency,
      resyncMs: opts.resyncMs,
      providerTimeoutMs: opts.providerTimeoutMs,
      leaseSeconds: Math.max(2, Math.round(opts.leaseMs / 1000)),
      settleTimeoutMs: opts.settleTimeoutMs,
      kubectlTimeoutMs: 180_000,
    },
  );
  await writeReport(opts.out, report);
  await writeFile(join(logDir, 'operators.log'), logs.join('\n'));
  process.stdout.write(`\n${renderSummary(report)}`);
  process.stdout.write(`\nwritten: ${opts.out}, operator logs: ${join(logDir, 'operators.log')}\n`);
  if (!report.ok) {
    const failed = report.invariants.filter((i) => !i.ok).map((i) => i.name);
    throw new Error(`${[...failed, ...report.problems].join('; ')}`);
  }
}

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`chaos: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
  process.exit(2);
}
await runWithTeardown('chaos', (teardown) => main(teardown, options));
