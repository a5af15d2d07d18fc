// `npm run bench [-- --count 1000]`: how the operator copes with N OidcClients applied at once, in one
// run on one fresh control plane (real kube-apiserver, etcd, the IAM-like registration server, and
// the compiled operator `node dist/cli/entry.js run` with the image's Node flags, built first):
//   1. apply alone: the N OidcClients in one `kubectl apply -f`, no operator running (namespace
//      `alone`, which the operator never watches);
//   2. burst: the operator started (`--namespaces bench`), its memory with no clients, then the same
//      apply in `bench`: the apply's time next to the operator, when all Secrets exist and all are
//      Ready, per-client latency, provider requests, apiserver writes by verb and resource, CPU;
//   3. idle: what the operator writes and asks while nothing changes, and its settled memory;
//   4. restart: SIGTERM and a fresh operator: 0 provider writes, time until every client was
//      reconciled again, then one resync interval of drift checks (their spread over the interval);
//   5. deletion of all.
// Prints progress and a table; writes JSON, an SVG chart and an HTML page to bench/results/.
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parseDuration } from '../src/operator/flags.js';
import { adminRequest, type ClientTls } from '../test/harness/admin-http.js';
import { buildOperator } from '../test/harness/build.js';
import type { ControlPlane } from '../test/harness/control-plane.js';
import { type LocalStack, startLocalStack } from '../test/harness/local-stack/index.js';
import { type OperatorChild, startOperatorChild } from '../test/harness/local-stack/operator-child.js';
import { runWithTeardown, type Teardown } from '../test/harness/local-stack/teardown.js';
import type { RecordedRequest } from '../test/harness/registration-server/index.js';
import { apiserverWrites, summarizeWrites, type WriteCounts } from './apiserver-writes.js';
import { type Marker, type Panel, perSecond, rate, renderHtml, renderSvg } from './chart.js';
import { clientsYaml } from './clients.js';
import { readImageRuntime } from './image-runtime.js';
import { parseMetrics, type Sample, sumBy, total } from './prom.js';
import { type BenchResult, type DriftSpread, type MemorySample, renderTable, writeJson } from './report.js';
import { cpuSeconds, processMemory, Sampler } from './sampler.js';
import { percentile, seconds } from './stats.js';
import { Tracker } from './tracker.js';

const USAGE = `usage: npm run bench -- [options]

  --count N                  OidcClients to apply (default 1000)
  --workers N                operator --max-concurrent-reconciles (default: the operator's)
  --provider-concurrency N   OidcProvider spec.maxConcurrentRequests (default 16)
  --resync-interval D        operator drift-check interval (default 60s); after the restart the
                             bench watches one such interval of drift checks
  --idle-seconds N           quiet period measured after all are Ready (default 30)
  --timeout-seconds N        give up waiting for a phase after this long (default 900)
  --operator FILE            compiled operator entry (default dist/cli/entry.js)
  --node-args="ARGS"         Node flags for the operator, space-separated (default: the image's,
                             from the Dockerfile's ENTRYPOINT; its ENV is applied too)
  --bare                     plain \`node\`: neither the image's flags nor its ENV (for comparisons)
  --heap-snapshots           write operator heap snapshots at 0 clients and after the idle period
                             to heap/ next to --out (inflates the later RSS figures: analysis only)
  --out FILE                 JSON result (default bench/results/bench-<count>.json; the chart
                             (.svg), an HTML page (.html) and the operator logs go next to it)`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NAMESPACE = 'bench';
const ALONE_NAMESPACE = 'alone';
const PROVIDER = 'iam';
const GROUP = 'oidc.dcr-operator.dev';
const VERSION = 'v1alpha1';

interface Options {
  count: number;
  workers: number | undefined;
  providerConcurrency: number;
  idleSeconds: number;
  resyncInterval: string;
  resyncMs: number;
  timeoutSeconds: number;
  operator: string;
  /** undefined: the image's. */
  nodeArgs: string[] | undefined;
  heapSnapshots: boolean;
  bare: boolean;
  out: string;
}

function positiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`${flag}: expected an integer 1..${max}, not "${value}"`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      count: { type: 'string', default: '1000' },
      workers: { type: 'string' },
      'provider-concurrency': { type: 'string', default: '16' },
      'idle-seconds': { type: 'string', default: '30' },
      'resync-interval': { type: 'string', default: '60s' },
      'timeout-seconds': { type: 'string', default: '900' },
      operator: { type: 'string', default: join(ROOT, 'dist/cli/entry.js') },
      'node-args': { type: 'string' },
      'heap-snapshots': { type: 'boolean', default: false },
      bare: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const count = positiveInt(values.count, '--count');
  return {
    count,
    workers: values.workers === undefined ? undefined : positiveInt(values.workers, '--workers'),
    // The CRD allows 1..64.
    providerConcurrency: positiveInt(values['provider-concurrency'], '--provider-concurrency', 64),
    idleSeconds: positiveInt(values['idle-seconds'], '--idle-seconds'),
    resyncInterval: values['resync-interval'],
    resyncMs: parseDuration(values['resync-interval'], '--resync-interval'),
    timeoutSeconds: positiveInt(values['timeout-seconds'], '--timeout-seconds'),
    operator: values.operator,
    nodeArgs: values['node-args']?.split(/\s+/).filter(Boolean),
    heapSnapshots: values['heap-snapshots'],
    bare: values.bare,
    out: values.out ?? join(ROOT, `bench/results/bench-${count}.json`),
  };
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round1 = (n: number) => Number(n.toFixed(1));

/** "METHOD kind status" with client ids folded, e.g. "PUT client 200", "POST register 201". */
function requestKey(r: RecordedRequest): string {
  return `${r.method} ${requestKind(r)} ${r.status || 'pending'}`;
}

function requestKind(r: RecordedRequest): string {
  if (r.path.endsWith('/client-registration')) return 'register';
  if (r.path.includes('/client-registration/')) return 'client';
  if (r.path.startsWith('/.well-known/')) return 'discovery';
  if (r.path === '/token') return 'token';
  return r.path;
}

const isProviderWrite = (r: RecordedRequest) => r.method !== 'GET' && r.method !== 'HEAD';

function countRequests(requests: readonly RecordedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) counts[requestKey(r)] = (counts[requestKey(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}

function perClient(counts: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Number((v / n).toFixed(2))]));
}

/** Mean of a histogram (sum / count) over the samples whose labels match, in seconds. */
function mean(
  samples: Sample[],
  histogram: string,
  match: (l: Record<string, string>) => boolean = () => true,
) {
  const pick = (suffix: string) =>
    samples
      .filter((s) => s.name === `${histogram}${suffix}` && match(s.labels))
      .reduce((a, s) => a + s.value, 0);
  const n = pick('_count');
  return n === 0 ? Number.NaN : Number((pick('_sum') / n).toFixed(3));
}

const cpuDiff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).map((k) => [k, round1((b[k] ?? 0) - (a[k] ?? 0))]));

const heapDir = (opts: Options) => join(dirname(opts.out), 'heap');

/** The admin client certificate from the kubeconfig, for reading the apiserver's /metrics directly. */
function adminTls(kc: KubeConfig): ClientTls {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const decode = (b64: string | undefined, what: string) => {
    if (!b64) throw new Error(`kubeconfig: no embedded ${what}`);
    return Buffer.from(b64, 'base64').toString('utf8');
  };
  return {
    ca: decode(cluster?.caData, 'CA'),
    cert: decode(user?.certData, 'client certificate'),
    key: decode(user?.keyData, 'client key'),
  };
}

class Bench {
  private readonly tls: ClientTls;
  private readonly tracker: Tracker;
  private readonly sampler: Sampler;
  private readonly origin = Date.now();
  private operator: OperatorChild;
  private readonly cp: ControlPlane;
  private readonly markers: Marker[] = [];
  private gcKinds = new Map<string, number>();
  /** Figures of the phases finished so far: written when the run fails or is interrupted. */
  readonly partial: Record<string, unknown> = {};
  readonly load: Record<string, number[]> = { start: loadavg().map(round1) };

  constructor(
    private readonly stack: LocalStack,
    private readonly opts: Options,
    private readonly teardown: Teardown,
    private readonly env: Record<string, string>,
    private readonly nodeArgs: string[],
    private readonly operatorArgs: string[],
    private readonly applyAlone: { ms: number; cpu: Record<string, number> },
  ) {
    const kc = new KubeConfig();
    kc.loadFromFile(stack.controlPlane.kubeconfigPath);
    this.cp = stack.controlPlane;
    this.tls = adminTls(kc);
    this.tracker = new Tracker(kc, NAMESPACE);
    this.operator = stack.operator;
    this.sampler = new Sampler(this.origin, {
      counts: () => this.tracker.counts(),
      operatorPid: () => (this.operator.exitInfo() === undefined ? this.operator.pid : undefined),
      apiserverWrites: () => this.writes(),
    });
  }

  private at(): number {
    return (Date.now() - this.origin) / 1000;
  }

  private async phase(name: string): Promise<void> {
    this.sampler.phase = name;
    this.markers.push({ at: this.at(), label: name });
    await this.sampler.sample();
  }

  kubectl = async (args: string[], input?: string) => {
    const timeoutMs = this.opts.timeoutSeconds * 1000;
    const r = await this.cp.kubectl(args, { input, timeoutMs });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r;
  };

  async writes(): Promise<WriteCounts> {
    const r = await adminRequest(this.cp.server, this.tls, 'GET', '/metrics');
    if (r.status !== 200) throw new Error(`apiserver /metrics answered ${r.status}`);
    return apiserverWrites(r.body);
  }

  async operatorMetrics(): Promise<Sample[]> {
    const port = this.operator.healthPort;
    if (port === undefined) throw new Error('the operator did not log its health port');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return parseMetrics(await res.text());
  }

  /** CPU seconds so far of the control plane's processes, the operator and this process. */
  async cpu(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.cp.pids)) out[name] = (await cpuSeconds(pid)) ?? 0;
    out.operator = (await cpuSeconds(this.operator.pid)) ?? 0;
    const own = process.cpuUsage();
    out['bench (registration server, watches)'] = (own.user + own.system) / 1e6;
    return out;
  }

  /** RSS now (with its anonymous and file-backed parts) and the V8 heap in use, in MiB. */
  async memory(label: string): Promise<MemorySample> {
    const samples = await this.operatorMetrics();
    const mem = await processMemory(this.operator.pid);
    if (!mem) throw new Error('the operator process is gone');
    const mib = (name: string) => Math.round(total(samples, `oidc_operator_${name}`) / 2 ** 20);
    const heapUsedMiB = mib('nodejs_heap_size_used_bytes');
    const heapTotalMiB = mib('nodejs_heap_size_total_bytes');
    const externalMiB = mib('nodejs_external_memory_bytes');
    progress(
      `  operator memory (${label}): RSS ${mem.rss} MiB (anon ${mem.anon}, file ${mem.file}), heap used ${heapUsedMiB} of ${heapTotalMiB} MiB, external ${externalMiB} MiB`,
    );
    return { rssMiB: mem.rss, anonMiB: mem.anon, fileMiB: mem.file, heapUsedMiB, heapTotalMiB, externalMiB };
  }

  /** SIGUSR2: the operator (started with --heapsnapshot-signal) writes a snapshot to heapDir. */
  async heapSnapshot(label: string): Promise<void> {
    if (!this.opts.heapSnapshots) return;
    process.kill(this.operator.pid, 'SIGUSR2');
    // Writing takes a few seconds; wait until the file stops growing.
    let last = -1;
    for (let i = 0; i < 120; i++) {
      await sleep(1_000);
      const dir = heapDir(this.opts);
      const files = (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot'));
      const sizes = await Promise.all(files.map((f) => stat(join(dir, f)).then((s) => s.size)));
      const size = sizes.reduce((a, b) => a + b, 0);
      if (size > 0 && size === last) break;
      last = size;
    }
    progress(`  heap snapshot (${label}) written to ${heapDir(this.opts)}`);
  }

  private state(): string {
    const c = this.tracker.counts();
    const last = this.sampler.samples.at(-1);
    const n = this.opts.count;
    return `created ${c.created}/${n}, Ready ${c.ready}, Secrets ${c.appSecrets}+${c.mgmtSecrets}, deleted ${c.deleted}; operator RSS ${last?.rssMiB ?? '?'} MiB, CPU ${last?.cpuPercent ?? '?'} %; load ${loadavg()[0]?.toFixed(1)}`;
  }

  /** Waits until `done` holds, printing the state every 5 s; throws after the timeout. */
  async until(what: string, done: () => boolean | Promise<boolean>, intervalMs = 250): Promise<number> {
    const start = Date.now();
    let lastPrint = start;
    for (;;) {
      if (await done()) {
        progress(`  ${what} after ${seconds(Date.now() - start)} s: ${this.state()}`);
        return Date.now();
      }
      if (Date.now() - lastPrint >= 5_000) {
        progress(`  [${seconds(Date.now() - start, 0)} s] ${this.state()}`);
        lastPrint = Date.now();
      }
      if (Date.now() - start > this.opts.timeoutSeconds * 1000) {
        throw new Error(`gave up after ${this.opts.timeoutSeconds} s waiting for ${what}; ${this.state()}`);
      }
      await sleep(intervalMs);
    }
  }

  /** Sleeps, printing the state every 10 s. */
  async wait(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await sleep(Math.min(10_000, end - Date.now()));
      progress(`  [${seconds(ms - (end - Date.now()), 0)} s] ${this.state()}`);
    }
  }

  private gcRuns(samples: Sample[]): Record<string, number> {
    const now = new Map(
      sumBy(samples, 'oidc_operator_nodejs_gc_duration_seconds_count', (l) => l.kind ?? '?'),
    );
    const out = Object.fromEntries([...now].map(([k, v]) => [k, v - (this.gcKinds.get(k) ?? 0)]));
    this.gcKinds = now;
    return out;
  }

  async run(): Promise<BenchResult> {
    const { count } = this.opts;
    const { provider } = this.stack;
    const problems: string[] = [];
    const findings: string[] = [];
    const startedAt = new Date(this.origin).toISOString();
    const load = this.load;
    this.partial.applyAlone = {
      kubectlApplySeconds: seconds(this.applyAlone.ms),
      cpuSeconds: this.applyAlone.cpu,
    };
    this.partial.loadAverage = load;
    await this.tracker.start();
    this.sampler.start();
    await this.phase('operator started');

    // ---- no clients
    await sleep(5_000);
    const memoryNoClients = await this.memory('no clients');
    this.partial.memoryNoClients = memoryNoClients;
    await this.heapSnapshot('no clients');
    this.gcRuns(await this.operatorMetrics());

    // ---- burst
    const dir = await mkdtemp(join(tmpdir(), 'oidc-bench-'));
    const file = join(dir, `oidcclients-${count}.yaml`);
    await writeFile(file, clientsYaml(count, PROVIDER));
    const writes0 = await this.writes();
    const metrics0 = await this.operatorMetrics();
    const cpu0 = await this.cpu();
    const req0 = provider.requests.length;
    progress(`\n[bench] burst: kubectl apply -f (${count} OidcClients) next to the operator`);
    await this.phase('apply');
    const t0 = Date.now();
    const apply = this.kubectl(['-n', NAMESPACE, 'apply', '-f', file]).then(() => Date.now());
    const applyDone = await this.until('kubectl apply returned', async () => {
      const settled = await Promise.race([apply, sleep(0).then(() => undefined)]);
      return settled !== undefined;
    });
    await apply;
    const applyMs = applyDone - t0;
    const readyWhenApplied = this.tracker.counts().ready;
    const secretsWhenApplied = this.tracker.counts().appSecrets;
    await rm(dir, { recursive: true, force: true });
    await this.phase('apply returned');
    const allReady = await this.until('all Ready', () => this.tracker.counts().ready >= count);
    await this.until(
      'all Secrets',
      () =>
        this.tracker.allSecretsAt('credentials', count) !== undefined &&
        this.tracker.allSecretsAt('registration', count) !== undefined,
    );
    const secretsAt = Math.max(
      this.tracker.allSecretsAt('credentials', count) ?? Number.NaN,
      this.tracker.allSecretsAt('registration', count) ?? Number.NaN,
    );
    await this.phase('all Ready');
    // The last status writes land within a moment of the last Ready being seen.
    await sleep(2_000);
    const writes1 = await this.writes();
    const metrics1 = await this.operatorMetrics();
    const cpu1 = await this.cpu();
    load.burst = loadavg().map(round1);
    const createRequests = provider.requests.slice(req0);
    const latencies = this.tracker.latencies();
    const posts = createRequests.filter(
      (r) => r.method === 'POST' && r.path.endsWith('/client-registration'),
    );
    const stored = await provider.store.list();
    const byName = new Map<string, number>();
    for (const c of stored) {
      const name = String(c.metadata.client_name);
      byName.set(name, (byName.get(name) ?? 0) + 1);
    }
    const duplicates = [...byName.values()].reduce((a, n) => a + n - 1, 0);
    if (posts.length !== count) problems.push(`${posts.length} registration POSTs for ${count} OidcClients`);
    if (stored.length !== count)
      problems.push(`${stored.length} clients at the provider for ${count} OidcClients`);
    if (duplicates > 0) {
      const names = [...byName].filter(([, n]) => n > 1).map(([name, n]) => `${name}×${n}`);
      problems.push(`duplicate registrations: ${names.slice(0, 10).join(', ')}`);
    }
    const cpuOf = (s: Sample[]) => total(s, 'oidc_operator_process_cpu_seconds_total');
    const gcOf = (s: Sample[]) => total(s, 'oidc_operator_nodejs_gc_duration_seconds_sum');
    const burstGcRuns = this.gcRuns(metrics1);
    const createWrites = summarizeWrites(writes0, writes1);
    const providerCounts = countRequests(createRequests);
    this.partial.burst = {
      kubectlApplySeconds: seconds(applyMs),
      allSecretsSeconds: seconds(secretsAt - t0),
      allReadySeconds: seconds(allReady - t0),
      timeToReadySeconds: {
        p50: seconds(percentile(latencies, 50), 2),
        p95: seconds(percentile(latencies, 95), 2),
      },
      providerRequestsPerClient: perClient(providerCounts, count),
      operatorWritesPerClient: Number((createWrites.operatorResources / count).toFixed(2)),
      apiserverWritesPerClient: perClient(createWrites.byVerbResource, count),
      cpuSeconds: cpuDiff(cpu0, cpu1),
      problems,
    };

    // ---- idle
    progress(`\n[bench] idle for ${this.opts.idleSeconds} s`);
    await this.phase('idle');
    const reqIdle0 = provider.requests.length;
    const reconciles = (s: Sample[]) => total(s, 'oidc_operator_reconcile_total');
    await this.wait(this.opts.idleSeconds * 1000);
    const writes2 = await this.writes();
    const metrics2 = await this.operatorMetrics();
    const idleRequests = provider.requests.slice(reqIdle0);
    const idleWrites = summarizeWrites(writes1, writes2);
    const idleProviderWrites = idleRequests.filter(isProviderWrite).length;
    if (idleProviderWrites > 0) problems.push(`${idleProviderWrites} provider writes while idle`);
    if (idleWrites.operatorResources > 0)
      problems.push(`${idleWrites.operatorResources} operator writes while idle`);
    const memorySettled = await this.memory(`${count} clients, after ${this.opts.idleSeconds} s idle`);
    const peakRssMiB = (await processMemory(this.operator.pid))?.peak ?? Number.NaN;
    await this.heapSnapshot(`${count} clients`);
    load.idle = loadavg().map(round1);
    this.partial.idle = {
      providerRequests: countRequests(idleRequests),
      apiserverWrites: idleWrites,
      memorySettled,
      peakRssMiB,
    };

    // ---- restart
    progress('\n[bench] restart: SIGTERM, then a fresh operator');
    await this.phase('restart');
    const reqR0 = provider.requests.length;
    const writesR0 = await this.writes();
    const s0 = Date.now();
    await this.operator.stop();
    const stopMs = Date.now() - s0;
    const r0 = Date.now();
    this.operator = await startOperatorChild({
      kubeconfigPath: this.cp.kubeconfigPath,
      args: this.operatorArgs,
      logPath: join(this.cp.dir, 'operator-restarted.log'),
      compiledMain: this.opts.operator,
      nodeArgs: this.nodeArgs,
      env: this.env,
    });
    const restarted = this.operator;
    this.teardown.add('restarted operator', () => restarted.stop());
    const syncedMs = Date.now() - r0;
    progress(
      `  caches synced ${seconds(syncedMs)} s after the start (previous one stopped in ${seconds(stopMs)} s)`,
    );
    const reconciledAt = await this.until('every client reconciled by the new operator', async () => {
      const m = await this.operatorMetrics().catch(() => undefined);
      return m !== undefined && reconciles(m) >= count;
    });
    const allReconciledMs = reconciledAt - r0;
    await this.phase('all reconciled');
    // The new operator sees each client first when its caches sync and spreads the first drift
    // checks over one interval from then.
    const syncedAt = r0 + syncedMs;
    progress(`  one resync interval of drift checks (${this.opts.resyncInterval} from the caches' sync)`);
    await this.wait(Math.max(0, syncedAt + this.opts.resyncMs + 2_000 - Date.now()));
    const writesR1 = await this.writes();
    const restartRequests = provider.requests.slice(reqR0);
    const restartWrites = summarizeWrites(writesR0, writesR1);
    const restartProviderWrites = restartRequests.filter(isProviderWrite).length;
    if (restartProviderWrites > 0)
      problems.push(`${restartProviderWrites} provider writes after the restart`);
    if (restartWrites.operatorResources > 0)
      problems.push(`${restartWrites.operatorResources} operator writes after the restart`);
    if (allReconciledMs > 30_000)
      findings.push(`restart: all reconciled after ${seconds(allReconciledMs)} s (> 30 s)`);
    const drift = this.driftSpread(restartRequests, syncedAt, this.opts.resyncMs);
    if (drift.gets < count * 0.9 || drift.gets > count * 1.1)
      findings.push(`${drift.gets} drift-check GETs in one resync interval for ${count} clients`);
    const memoryRestarted = await this.memory(`${count} clients, restarted, after one resync interval`);
    load.restart = loadavg().map(round1);
    this.partial.restart = {
      syncedMs,
      allReconciledMs,
      restartProviderWrites,
      restartWrites,
      drift,
      memoryRestarted,
    };

    // ---- delete
    progress('\n[bench] kubectl delete oidcclients --all --wait=false');
    await this.phase('delete');
    const reqDel0 = provider.requests.length;
    const d0 = Date.now();
    await this.kubectl(['-n', NAMESPACE, 'delete', 'oidcclients', '--all', '--wait=false']);
    const deleteCmdMs = Date.now() - d0;
    let storeEmptyMs: number | undefined;
    const goneAt = await this.until('deletion', async () => {
      const left = (await provider.store.list()).length;
      if (left === 0) storeEmptyMs ??= Date.now() - d0;
      return storeEmptyMs !== undefined && this.tracker.counts().deleted >= count;
    });
    await this.phase('all deleted');
    const deleteRequests = provider.requests.slice(reqDel0);
    const deletes = deleteRequests.filter((r) => r.method === 'DELETE').length;
    if (deletes < count) problems.push(`${deletes} provider DELETEs for ${count} OidcClients`);
    if (deletes > count) findings.push(`${deletes - count} extra provider DELETEs for ${count} deletions`);
    await sleep(5_000);
    const memoryAfterDelete = await this.memory('all deleted');
    const metrics3 = await this.operatorMetrics();
    load.delete = loadavg().map(round1);
    this.sampler.stop();
    if (this.tracker.errors > 0)
      findings.push(`${this.tracker.errors} watch errors in the bench's own watches`);

    const ratio = (secretsAt - t0) / this.applyAlone.ms;
    if (ratio > 2) findings.push(`all Secrets after ${ratio.toFixed(2)}× the apply alone (goal ≤ 2×)`);

    return {
      startedAt,
      config: {
        count,
        workers: this.opts.workers ?? 'default',
        providerMaxConcurrentRequests: this.opts.providerConcurrency,
        resyncInterval: this.opts.resyncInterval,
        idleSeconds: this.opts.idleSeconds,
        cpus: availableParallelism(),
        node: process.versions.node,
        operator: this.opts.operator,
        operatorArgs: this.operatorArgs.join(' '),
        nodeArgs: this.nodeArgs.join(' '),
        env: Object.entries(this.env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
        loadAverage: load,
      },
      applyAlone: { kubectlApplySeconds: seconds(this.applyAlone.ms), cpuSeconds: this.applyAlone.cpu },
      memory: {
        noClients: memoryNoClients,
        settled: memorySettled,
        restarted: memoryRestarted,
        afterDeletion: memoryAfterDelete,
        peakRssMiB,
        maxSampledRssMiB: this.sampler.maxRssMiB,
      },
      create: {
        kubectlApplySeconds: seconds(applyMs),
        applySlowdown: Number((applyMs / this.applyAlone.ms).toFixed(2)),
        readyWhenApplyReturned: readyWhenApplied,
        secretsWhenApplyReturned: secretsWhenApplied,
        allSecretsSeconds: seconds(secretsAt - t0),
        allSecretsToApplyAlone: Number(ratio.toFixed(2)),
        allReadySeconds: seconds(allReady - t0),
        throughputPerSecond: Number((count / ((allReady - t0) / 1000)).toFixed(1)),
        timeToReadySeconds: {
          p50: seconds(percentile(latencies, 50), 2),
          p95: seconds(percentile(latencies, 95), 2),
          max: seconds(Math.max(...latencies), 2),
        },
        providerPosts: posts.length,
        providerClients: stored.length,
        duplicateRegistrations: duplicates,
        providerRequests: providerCounts,
        providerRequestsPerClient: perClient(providerCounts, count),
        apiserverWrites: createWrites,
        operatorWritesPerClient: Number((createWrites.operatorResources / count).toFixed(2)),
        apiserverWritesPerClient: perClient(createWrites.byVerbResource, count),
        cpuSeconds: cpuDiff(cpu0, cpu1),
        operatorCpuSeconds: round1(cpuOf(metrics1) - cpuOf(metrics0)),
        operatorGcSeconds: round1(gcOf(metrics1) - gcOf(metrics0)),
        operatorGcRuns: burstGcRuns,
      },
      idle: {
        seconds: this.opts.idleSeconds,
        providerRequests: countRequests(idleRequests),
        apiserverWrites: idleWrites,
        reconciles: reconciles(metrics2) - reconciles(metrics1),
      },
      restart: {
        stopSeconds: seconds(stopMs),
        cachesSyncedSeconds: seconds(syncedMs),
        allReconciledSeconds: seconds(allReconciledMs),
        providerRequests: countRequests(restartRequests),
        providerWrites: restartProviderWrites,
        apiserverWrites: restartWrites,
        drift,
      },
      delete: {
        kubectlDeleteSeconds: seconds(deleteCmdMs),
        providerStoreEmptySeconds: seconds(storeEmptyMs ?? Number.NaN),
        allGoneSeconds: seconds(goneAt - d0),
        providerRequests: countRequests(deleteRequests),
      },
      operator: {
        reconciles: Object.fromEntries(
          sumBy(metrics3, 'oidc_operator_reconcile_total', (l) => l.result ?? '?'),
        ),
        workqueueRetries: total(metrics3, 'oidc_operator_workqueue_retries_total'),
        logLines: { ...restarted.levelCounts },
        meanSeconds: {
          reconcile: mean(metrics3, 'oidc_operator_reconcile_duration_seconds'),
          ...Object.fromEntries(
            ['POST', 'GET', 'PUT', 'DELETE'].map((m) => [
              `provider ${m}`,
              mean(metrics3, 'oidc_operator_provider_request_duration_seconds', (l) => l.method === m),
            ]),
          ),
        },
      },
      problems,
      findings,
    };
  }

  /** Drift-check GETs in the resync interval after `start`, in ten equal parts of it. */
  driftSpread(requests: readonly RecordedRequest[], start: number, intervalMs: number): DriftSpread {
    const bins = new Array<number>(10).fill(0);
    let gets = 0;
    for (const r of requests) {
      if (r.method !== 'GET' || requestKind(r) !== 'client') continue;
      const i = Math.floor(((r.at - start) / intervalMs) * 10);
      if (i < 0 || i >= 10) continue;
      gets++;
      bins[i] = (bins[i] ?? 0) + 1;
    }
    const meanBin = gets / 10;
    const sd = Math.sqrt(bins.reduce((a, b) => a + (b - meanBin) ** 2, 0) / 10);
    return {
      gets,
      bins,
      maxToMean: meanBin === 0 ? Number.NaN : Number((Math.max(...bins) / meanBin).toFixed(2)),
      coefficientOfVariation: meanBin === 0 ? Number.NaN : Number((sd / meanBin).toFixed(2)),
    };
  }

  chart(): string {
    const count = this.opts.count;
    const samples = this.sampler.samples;
    const xMax = Math.max(1, ...samples.map((s) => s.t / 1000));
    const pts = (f: (s: (typeof samples)[number]) => number | undefined): [number, number][] =>
      samples.flatMap((s) => {
        const v = f(s);
        return v === undefined ? [] : [[s.t / 1000, v] as [number, number]];
      });
    const provider = this.stack.provider.requests.map((q) => ({ ...q, t: (q.at - this.origin) / 1000 }));
    const byMethod = (m: string) =>
      perSecond(
        provider.filter((q) => q.method === m).map((q) => q.t),
        xMax,
        2,
      );
    const applyAt = this.markers.find((m) => m.label === 'apply')?.at ?? 0;
    const alone = this.applyAlone.ms / 1000;
    const markers: Marker[] = [
      ...this.markers,
      { at: applyAt + alone, label: `apply alone (${seconds(this.applyAlone.ms)} s)` },
      { at: applyAt + 2 * alone, label: '2× apply alone' },
    ];
    const panels: Panel[] = [
      {
        title: `OidcClients (${count}): the apply's progress, Ready, application Secrets`,
        series: [
          { name: 'created (apply)', color: '#888', points: pts((s) => s.counts.created - s.counts.deleted) },
          { name: 'Ready', color: '#1a7f37', points: pts((s) => s.counts.ready - s.counts.deleted) },
          {
            name: 'app Secrets',
            color: '#0969da',
            dashed: true,
            points: pts((s) => s.counts.appSecrets - s.counts.secretsDeleted / 2),
          },
        ],
      },
      {
        title: 'operator RSS (MiB)',
        series: [{ name: 'RSS', color: '#8250df', points: pts((s) => s.rssMiB) }],
      },
      {
        title: 'operator CPU (% of one core)',
        series: [{ name: 'CPU', color: '#cf222e', points: pts((s) => s.cpuPercent) }],
      },
      {
        title: 'apiserver writes per second',
        series: [
          { name: 'all', color: '#888', points: rate(pts((s) => s.apiserverWrites?.all)) },
          { name: "operator's", color: '#bf8700', points: rate(pts((s) => s.apiserverWrites?.operator)) },
        ],
      },
      {
        title: 'provider requests per second (2 s bins)',
        series: [
          { name: 'POST', color: '#1a7f37', points: byMethod('POST') },
          { name: 'GET', color: '#0969da', points: byMethod('GET') },
          { name: 'DELETE', color: '#cf222e', points: byMethod('DELETE') },
        ],
      },
    ];
    return renderSvg(
      `npm run bench -- --count ${count}: ${availableParallelism()} CPUs, load average ${(this.load.burst ?? loadavg().map(round1)).join(' ')} after the burst`,
      panels,
      markers,
      xMax,
    );
  }

  get timeline() {
    return this.sampler.samples;
  }
}

async function applyAlone(cp: ControlPlane, opts: Options, providerYaml: string) {
  const kubectl = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, { input, timeoutMs: opts.timeoutSeconds * 1000 });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  };
  const dir = await mkdtemp(join(tmpdir(), 'oidc-bench-'));
  const file = join(dir, 'alone.yaml');
  await writeFile(file, clientsYaml(opts.count, PROVIDER));
  await kubectl(['create', 'namespace', ALONE_NAMESPACE]);
  progress(`\n[bench] apply alone: kubectl apply -f (${opts.count} OidcClients), no operator running`);
  const pids = cp.pids;
  const cpuNow = async () => {
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) out[name] = (await cpuSeconds(pid)) ?? 0;
    return out;
  };
  const c0 = await cpuNow();
  const t0 = Date.now();
  await kubectl(['-n', ALONE_NAMESPACE, 'apply', '-f', file]);
  const ms = Date.now() - t0;
  const c1 = await cpuNow();
  await rm(dir, { recursive: true, force: true });
  progress(`  ${seconds(ms)} s`);
  // The burst's namespace and provider exist before the operator starts: its first reconciles
  // find the provider in the cache.
  await kubectl(['create', 'namespace', NAMESPACE]);
  await kubectl(['-n', NAMESPACE, 'apply', '-f', '-'], providerYaml);
  const cpu = Object.fromEntries(Object.keys(c1).map((k) => [k, round1((c1[k] ?? 0) - (c0[k] ?? 0))]));
  return { ms, cpu };
}

async function main(teardown: Teardown, opts: Options): Promise<void> {
  progress('[bench] building the operator (npm run build)');
  await buildOperator();
  const image = opts.bare ? { nodeArgs: [], env: {} } : await readImageRuntime(join(ROOT, 'Dockerfile'));
  const nodeArgs = [...(opts.nodeArgs ?? image.nodeArgs)];
  await mkdir(dirname(opts.out), { recursive: true });
  if (opts.heapSnapshots) {
    await mkdir(heapDir(opts), { recursive: true });
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir(opts)}`);
  }
  const operatorArgs = [
    '--health-port',
    '0',
    '--namespaces',
    NAMESPACE,
    '--resync-interval',
    opts.resyncInterval,
    // The bench counts registration POSTs per OidcClient; the provider health probe (one
    // unparsable POST per provider every few minutes) would be one more.
    '--provider-check-interval',
    '0',
    ...(opts.workers ? ['--max-concurrent-reconciles', String(opts.workers)] : []),
  ];
  let alone: { ms: number; cpu: Record<string, number> } | undefined;
  const stack = await startLocalStack({
    teardown,
    log: progress,
    operatorCompiledMain: opts.operator,
    operatorNodeArgs: nodeArgs,
    operatorEnv: image.env,
    operatorArgs,
    beforeOperator: async (cp, provider) => {
      alone = await applyAlone(
        cp,
        opts,
        `apiVersion: ${GROUP}/${VERSION}
kind: OidcProvider
metadata:
  name: ${PROVIDER}
spec:
  issuerUrl: ${provider.issuer}
  registrationEndpoint: ${provider.registrationEndpoint}
  maxConcurrentRequests: ${opts.providerConcurrency}
`,
      );
    },
  });
  const base = opts.out.replace(/\.json$/, '');
  // The operator logs are removed with the control plane's temp dir; keep them, also on failure.
  teardown.add('operator log copy', async () => {
    await copyFile(stack.operator.logPath, `${base}.operator.log`).catch(() => undefined);
    await copyFile(
      join(stack.controlPlane.dir, 'operator-restarted.log'),
      `${base}.operator-restarted.log`,
    ).catch(() => undefined);
  });
  if (!alone) throw new Error('the apply alone did not run');
  const bench = new Bench(stack, opts, teardown, image.env, nodeArgs, operatorArgs, alone);
  let finished = false;
  teardown.add('partial results', async () => {
    if (finished) return;
    await writeFile(
      `${base}.partial.json`,
      `${JSON.stringify({ ...bench.partial, timeline: bench.timeline }, null, 2)}\n`,
    );
    await writeFile(`${base}.partial.svg`, bench.chart());
    progress(`partial results: ${base}.partial.json, ${base}.partial.svg`);
  });
  const result = await bench.run();
  finished = true;
  const table = renderTable(result);
  process.stdout.write(`\n${table}`);
  await writeJson(opts.out, { ...result, timeline: bench.timeline });
  const svg = bench.chart();
  await writeFile(`${base}.svg`, svg);
  await writeFile(
    `${base}.html`,
    renderHtml(`oidc-client-operator bench: ${result.config.count} OidcClients`, svg, table),
  );
  process.stdout.write(`\nwritten: ${opts.out}, ${base}.svg, ${base}.html, ${base}.operator*.log\n`);
  if (result.problems.length > 0) throw new Error(`${result.problems.length} problem(s), see above`);
}

let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
  process.exit(2);
}
await runWithTeardown('bench', (teardown) => main(teardown, options));
