// `npm run bench [-- --count 1000 --workers 32]`: how the operator copes with 1,000 OidcClients
// applied at once. Real control plane, the IAM-like registration server and the compiled operator
// (`node dist/cli/main.js run`, built by `npm run bench` first) as a child process; one
// `kubectl apply -f` of a multi-document file; then the time until all are Ready, per-CR latency,
// registrations at the provider (exactly one each), apiserver writes, an idle period (should be
// quiet), the operator's memory with no clients and after the burst, and deletion of everything.
// Prints a table and writes .cache/bench/last.json.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { OidcClient } from '../src/api/types.generated.js';
import { parseDuration } from '../src/operator/flags.js';
import type { ToolResult } from '../test/harness/exec.js';
import { type LocalStack, startLocalStack } from '../test/harness/local-stack/index.js';
import { runWithTeardown, type Teardown } from '../test/harness/local-stack/teardown.js';
import type { RecordedRequest } from '../test/harness/registration-server/index.js';
import { apiserverWrites, summarizeWrites } from './apiserver-writes.js';
import { clientsYaml } from './clients.js';
import { readImageRuntime } from './image-runtime.js';
import { parseMetrics, type Sample, sumBy, total } from './prom.js';
import { type BenchResult, type MemorySample, renderTable, writeJson } from './report.js';
import { percentile, seconds } from './stats.js';

const USAGE = `usage: npm run bench -- [options]

  --count N                  OidcClients to apply (default 1000)
  --workers N                operator --max-concurrent-reconciles (default 32)
  --provider-concurrency N   OidcProvider spec.maxConcurrentRequests (default 16)
  --idle-seconds N           quiet period measured after all are Ready (default 20)
  --resync-interval D        operator drift-check interval (default 10m)
  --timeout-seconds N        give up waiting for Ready or deletion after this long (default 600)
  --operator FILE            compiled operator entry (default dist/cli/main.js)
  --node-args="ARGS"         Node flags for the operator, space-separated (default: the image's,
                             from the Dockerfile's ENTRYPOINT; its ENV is applied too)
  --bare                     plain \`node\`: neither the image's flags nor its ENV (for comparisons)
  --heap-snapshots           write operator heap snapshots at 0 clients and after the idle period
                             to heap/ next to --out (inflates the later RSS figures: analysis only)
  --out FILE                 JSON result (default .cache/bench/last.json; the operator log is
                             copied next to it)`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NAMESPACE = 'bench';
const PROVIDER = 'iam';
const GROUP = 'oidc.dcr-operator.dev';
const VERSION = 'v1alpha1';

interface Options {
  count: number;
  workers: number;
  providerConcurrency: number;
  idleSeconds: number;
  resyncInterval: string;
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
      workers: { type: 'string', default: '32' },
      'provider-concurrency': { type: 'string', default: '16' },
      'idle-seconds': { type: 'string', default: '20' },
      'resync-interval': { type: 'string', default: '10m' },
      'timeout-seconds': { type: 'string', default: '600' },
      operator: { type: 'string', default: join(ROOT, 'dist/cli/main.js') },
      'node-args': { type: 'string' },
      'heap-snapshots': { type: 'boolean', default: false },
      bare: { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, '.cache/bench/last.json') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  parseDuration(values['resync-interval'], '--resync-interval');
  return {
    count: positiveInt(values.count, '--count'),
    workers: positiveInt(values.workers, '--workers'),
    // The CRD allows 1..64.
    providerConcurrency: positiveInt(values['provider-concurrency'], '--provider-concurrency', 64),
    idleSeconds: positiveInt(values['idle-seconds'], '--idle-seconds'),
    resyncInterval: values['resync-interval'],
    timeoutSeconds: positiveInt(values['timeout-seconds'], '--timeout-seconds'),
    operator: values.operator,
    nodeArgs: values['node-args']?.split(/\s+/).filter(Boolean),
    heapSnapshots: values['heap-snapshots'],
    bare: values.bare,
    out: values.out,
  };
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** "METHOD kind status" with client ids folded, e.g. "PUT client 200", "POST register 201". */
function requestKey(r: RecordedRequest): string {
  let kind = r.path;
  if (r.path.endsWith('/client-registration')) kind = 'register';
  else if (r.path.includes('/client-registration/')) kind = 'client';
  else if (r.path.startsWith('/.well-known/')) kind = 'discovery';
  else if (r.path === '/token') kind = 'token';
  return `${r.method} ${kind} ${r.status || 'pending'}`;
}

function countRequests(requests: readonly RecordedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) counts[requestKey(r)] = (counts[requestKey(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
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

const heapDir = (opts: Options) => join(dirname(opts.out), 'heap');

/** The operator process's memory from /proc (MiB): what the kubelet's limit is judged against. */
async function processMemory(
  pid: number,
): Promise<{ rss: number; anon: number; file: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const mib = (field: string) => Math.round(kib(field) / 1024);
  return { rss: mib('VmRSS'), anon: mib('RssAnon'), file: mib('RssFile'), peak: mib('VmHWM') };
}

function isReady(cr: OidcClient): boolean {
  const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' && cr.status?.observedGeneration === cr.metadata.generation;
}

class Bench {
  private readonly custom: CustomObjectsApi;
  private maxRss = 0;
  private maxHeap = 0;

  constructor(
    private readonly stack: LocalStack,
    private readonly opts: Options,
    /** The operator's extra environment (the image's ENV). */
    private readonly env: Record<string, string>,
  ) {
    const kc = new KubeConfig();
    kc.loadFromFile(stack.controlPlane.kubeconfigPath);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  kubectl = async (args: string[], input?: string): Promise<ToolResult> => {
    const timeoutMs = this.opts.timeoutSeconds * 1000;
    const r = await this.stack.controlPlane.kubectl(args, { input, timeoutMs });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r;
  };

  async listClients(): Promise<OidcClient[]> {
    const list = (await this.custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NAMESPACE,
      plural: 'oidcclients',
    })) as { items: OidcClient[] };
    return list.items;
  }

  async operatorMetrics(): Promise<Sample[]> {
    const port = this.stack.operator.healthPort;
    if (port === undefined) throw new Error('the operator did not log its health port');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const samples = parseMetrics(await res.text());
    this.maxRss = Math.max(this.maxRss, total(samples, 'oidc_operator_process_resident_memory_bytes'));
    this.maxHeap = Math.max(this.maxHeap, total(samples, 'oidc_operator_nodejs_heap_size_used_bytes'));
    return samples;
  }

  /** RSS now (with its anonymous and file-backed parts) and the V8 heap in use, in MiB. */
  async memory(label: string): Promise<MemorySample> {
    const samples = await this.operatorMetrics();
    const mem = await processMemory(this.stack.operator.pid);
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
    process.kill(this.stack.operator.pid, 'SIGUSR2');
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

  /** Polls until `done` holds, printing `describe` every 5 s; throws after the timeout. */
  async poll(what: string, intervalMs: number, check: () => Promise<{ done: boolean; state: string }>) {
    const start = Date.now();
    let lastPrint = 0;
    for (;;) {
      const { done, state } = await check();
      const elapsed = Date.now() - start;
      if (done) {
        progress(`  ${what}: ${state} (${seconds(elapsed)} s)`);
        return;
      }
      if (elapsed - lastPrint >= 5_000) {
        progress(`  ${what}: ${state} (${seconds(elapsed)} s)`);
        lastPrint = elapsed;
      }
      if (elapsed > this.opts.timeoutSeconds * 1000) {
        throw new Error(
          `gave up after ${this.opts.timeoutSeconds} s waiting for ${what}; last state: ${state}`,
        );
      }
      await sleep(intervalMs);
    }
  }

  async run(): Promise<BenchResult> {
    const { count } = this.opts;
    const { provider } = this.stack;
    const problems: string[] = [];
    const findings: string[] = [];
    const startedAt = new Date().toISOString();

    await this.kubectl(['create', 'namespace', NAMESPACE]);
    await this.kubectl(
      ['-n', NAMESPACE, 'apply', '-f', '-'],
      `apiVersion: ${GROUP}/${VERSION}
kind: OidcProvider
metadata:
  name: ${PROVIDER}
spec:
  issuerUrl: ${provider.issuer}
  registrationEndpoint: ${provider.registrationEndpoint}
  maxConcurrentRequests: ${this.opts.providerConcurrency}
`,
    );
    const dir = await mkdtemp(join(tmpdir(), 'oidc-bench-'));
    const file = join(dir, `oidcclients-${count}.yaml`);
    await writeFile(file, clientsYaml(count, PROVIDER));
    // The provider must be in the operator's cache before the first client is reconciled, or the
    // first reconciles fail with ProviderNotFound and back off (a watch event takes milliseconds).
    await sleep(1_000);
    const memoryNoClients = await this.memory('no clients');
    await this.heapSnapshot('no clients');

    // ---- create
    const writes0 = await apiserverWrites(this.kubectl);
    const metrics0 = await this.operatorMetrics();
    const req0 = provider.requests.length;
    progress(`\n[bench] kubectl apply -f ${file} (${count} OidcClients)`);
    const t0 = Date.now();
    await this.kubectl(['-n', NAMESPACE, 'apply', '-f', file]);
    const applyMs = Date.now() - t0;
    await rm(dir, { recursive: true, force: true });
    progress(`  kubectl apply returned after ${seconds(applyMs)} s`);

    let items: OidcClient[] = [];
    let readyWhenApplied: number | undefined;
    await this.poll('Ready', 1_000, async () => {
      items = await this.listClients();
      await this.operatorMetrics().catch(() => undefined);
      const ready = items.filter(isReady).length;
      readyWhenApplied ??= ready;
      return { done: items.length === count && ready === count, state: `${ready}/${count} Ready` };
    });
    const observedMs = Date.now() - t0;
    const writes1 = await apiserverWrites(this.kubectl);
    const metrics1 = await this.operatorMetrics();
    const createRequests = provider.requests.slice(req0);

    const perCr: number[] = [];
    let lastReadyAt = 0;
    for (const cr of items) {
      const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
      const readyAt = Date.parse(ready?.lastTransitionTime ?? '');
      const created = Date.parse(cr.metadata.creationTimestamp as unknown as string);
      lastReadyAt = Math.max(lastReadyAt, readyAt);
      perCr.push(readyAt - created);
    }
    const allReadyMs = lastReadyAt - t0;
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
    const cpu = (s: Sample[]) => total(s, 'oidc_operator_process_cpu_seconds_total');
    // Time in V8 garbage collection (all kinds): what small-heap flags would cost.
    const gc = (s: Sample[]) => total(s, 'oidc_operator_nodejs_gc_duration_seconds_sum');
    // GC runs by kind (minor, major, incremental, weakcb): unlike durations, not inflated by load.
    const gcRuns = (a: Sample[], b: Sample[]) => {
      const count = (s: Sample[]) =>
        new Map(sumBy(s, 'oidc_operator_nodejs_gc_duration_seconds_count', (l) => l.kind ?? '?'));
      const before = count(a);
      return Object.fromEntries([...count(b)].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
    };

    // ---- idle
    progress(`\n[bench] idle for ${this.opts.idleSeconds} s`);
    const reqIdle0 = provider.requests.length;
    const reconciles = (s: Sample[]) => total(s, 'oidc_operator_reconcile_total');
    await sleep(this.opts.idleSeconds * 1000);
    const writes2 = await apiserverWrites(this.kubectl);
    const metrics2 = await this.operatorMetrics();
    const idleRequests = provider.requests.length - reqIdle0;
    const idleWrites = summarizeWrites(writes1, writes2);
    if (idleRequests > 0) problems.push(`${idleRequests} provider requests while idle`);
    if (idleWrites.operatorResources > 0)
      problems.push(`${idleWrites.operatorResources} operator writes while idle`);
    const memoryAfterBurst = await this.memory(`${count} clients, after ${this.opts.idleSeconds} s idle`);
    const peakRssMiB = (await processMemory(this.stack.operator.pid)).peak;
    await this.heapSnapshot(`${count} clients`);

    // ---- delete
    progress('\n[bench] kubectl delete oidcclients --all --wait=false');
    const reqDel0 = provider.requests.length;
    const d0 = Date.now();
    await this.kubectl(['-n', NAMESPACE, 'delete', 'oidcclients', '--all', '--wait=false']);
    const deleteCmdMs = Date.now() - d0;
    let storeEmptyMs: number | undefined;
    let goneMs: number | undefined;
    await this.poll('deletion', 250, async () => {
      const left = (await provider.store.list()).length;
      if (left === 0) storeEmptyMs ??= Date.now() - d0;
      const crs = (await this.listClients()).length;
      if (crs === 0) goneMs ??= Date.now() - d0;
      return {
        done: storeEmptyMs !== undefined && goneMs !== undefined,
        state: `${left} clients at the provider, ${crs} OidcClients left`,
      };
    });
    const deleteRequests = provider.requests.slice(reqDel0);
    const deletes = deleteRequests.filter((r) => r.method === 'DELETE').length;
    if (deletes < count) problems.push(`${deletes} provider DELETEs for ${count} OidcClients`);
    // Not fatal (the client is gone either way), but each extra DELETE costs a 401 and a token probe.
    if (deletes > count)
      findings.push(`${deletes - count} extra provider DELETEs (answered 401) for ${count} deletions`);
    const metrics3 = await this.operatorMetrics();

    return {
      startedAt,
      config: {
        count,
        workers: this.opts.workers,
        providerMaxConcurrentRequests: this.opts.providerConcurrency,
        resyncInterval: this.opts.resyncInterval,
        idleSeconds: this.opts.idleSeconds,
        cpus: availableParallelism(),
        node: process.versions.node,
        operator: this.opts.operator,
        nodeArgs: (this.opts.nodeArgs ?? []).join(' '),
        env: Object.entries(this.env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
      },
      memory: {
        noClients: memoryNoClients,
        afterBurst: memoryAfterBurst,
        peakRssMiB,
      },
      create: {
        kubectlApplySeconds: seconds(applyMs),
        readyWhenApplyReturned: readyWhenApplied ?? 0,
        allReadySeconds: seconds(allReadyMs),
        allReadyObservedSeconds: seconds(observedMs),
        throughputPerSecond: Number((count / (allReadyMs / 1000)).toFixed(1)),
        timeToReadySeconds: {
          p50: seconds(percentile(perCr, 50)),
          p95: seconds(percentile(perCr, 95)),
          max: seconds(Math.max(...perCr)),
        },
        providerPosts: posts.length,
        providerClients: stored.length,
        duplicateRegistrations: duplicates,
        providerRequests: countRequests(createRequests),
        apiserverWrites: summarizeWrites(writes0, writes1),
        operatorCpuSeconds: Number((cpu(metrics1) - cpu(metrics0)).toFixed(1)),
        operatorGcSeconds: Number((gc(metrics1) - gc(metrics0)).toFixed(1)),
        operatorGcRuns: gcRuns(metrics0, metrics1),
      },
      idle: {
        seconds: this.opts.idleSeconds,
        providerRequests: idleRequests,
        apiserverWrites: idleWrites,
        reconciles: reconciles(metrics2) - reconciles(metrics1),
      },
      delete: {
        kubectlDeleteSeconds: seconds(deleteCmdMs),
        providerStoreEmptySeconds: seconds(storeEmptyMs ?? Number.NaN),
        allGoneSeconds: seconds(goneMs ?? Number.NaN),
        providerRequests: countRequests(deleteRequests),
      },
      operator: {
        reconciles: Object.fromEntries(
          sumBy(metrics3, 'oidc_operator_reconcile_total', (l) => l.result ?? '?'),
        ),
        workqueueRetries: total(metrics3, 'oidc_operator_workqueue_retries_total'),
        maxRssMiB: Math.round(this.maxRss / 2 ** 20),
        maxHeapUsedMiB: Math.round(this.maxHeap / 2 ** 20),
        logLines: { ...this.stack.operator.levelCounts },
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
}

async function main(teardown: Teardown, opts: Options): Promise<void> {
  const image = opts.bare ? { nodeArgs: [], env: {} } : await readImageRuntime(join(ROOT, 'Dockerfile'));
  opts.nodeArgs ??= image.nodeArgs;
  const nodeArgs = [...opts.nodeArgs];
  if (opts.heapSnapshots) {
    await mkdir(heapDir(opts), { recursive: true });
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir(opts)}`);
  }
  const stack = await startLocalStack({
    teardown,
    log: progress,
    operatorCompiledMain: opts.operator,
    operatorNodeArgs: nodeArgs,
    operatorEnv: image.env,
    operatorArgs: [
      '--health-port',
      '0',
      '--max-concurrent-reconciles',
      String(opts.workers),
      '--resync-interval',
      opts.resyncInterval,
      // The bench counts registration POSTs per OidcClient; the provider health probe (one
      // unparsable POST per provider every few minutes) would be one more.
      '--provider-check-interval',
      '0',
    ],
  });
  // The operator log is removed with the control plane's temp dir; keep it for a closer look, also
  // when the run fails.
  const logCopy = join(dirname(opts.out), 'operator.log');
  teardown.add('operator log copy', async () => {
    await mkdir(dirname(opts.out), { recursive: true });
    await copyFile(stack.operator.logPath, logCopy).catch(() => undefined);
  });
  const result = await new Bench(stack, opts, image.env).run();
  process.stdout.write(`\n${renderTable(result)}`);
  await writeJson(opts.out, result);
  process.stdout.write(`\nwritten: ${opts.out}, operator log: ${logCopy}\n`);
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
