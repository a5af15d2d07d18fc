// Runs the operator the way a Pod does: `oidc-client-operator run` as its own process, with its own
// kubeconfig and POD_NAME, logging JSON lines. Tests read its output, its health port and its
// /metrics, and end it with real signals. Built on processes.ts, so a crashed or killed test runner
// never leaves an operator behind (process group + watchdog).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ExitInfo, type ManagedProcess, startProcess, stopProcess } from './processes.js';
import { waitFor } from './wait.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');
/** `npm run build` output: what the container image runs. */
export const COMPILED_MAIN = resolve(import.meta.dirname, '../../dist/cli/entry.js');
const HEALTH_MSG = 'serving /healthz, /readyz and /metrics';

/** One pino JSON line; non-JSON output (a crash trace) is kept as `{ msg: line, raw: true }`. */
export interface LogLine {
  level?: string;
  msg?: string;
  time?: string;
  raw?: boolean;
  [key: string]: unknown;
}

export interface OperatorProcessOptions {
  /** Names the process in errors and its temp folder. */
  name: string;
  kubeconfigPath: string;
  /** Flags after `run`; --kubeconfig, --health-port and --health-host are set by the helper. */
  args?: readonly string[];
  /** Extra environment, e.g. POD_NAME (the Lease identity). */
  env?: Record<string, string>;
  /** How long to wait for the health port to be announced (default 30 s: tsx compiles on start). */
  startTimeoutMs?: number;
  /** Run dist/cli/entry.js (built by `npm run build`) with plain node instead of the sources via tsx. */
  compiled?: boolean;
}

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface OperatorProcess {
  readonly name: string;
  readonly pid: number;
  /** Bound health/metrics port, read from the operator's own log line. */
  readonly port: number;
  readonly baseUrl: string;
  /** Set once the process has exited. */
  readonly exit: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  /** Everything written to stdout and stderr so far (both go to one file, in order). */
  output(): string;
  logs(): LogLine[];
  /** GET on the health port; never throws on a non-2xx status. */
  get(path: string): Promise<{ status: number; body: string }>;
  metrics(): Promise<MetricSample[]>;
  /** Waits for a log line matching `match`; fails at once if the process exits first. */
  waitForLog(
    match: (line: LogLine) => boolean,
    opts: { description: string; timeoutMs?: number },
  ): Promise<LogLine>;
  /** Waits for /readyz to answer 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Signals the process group (SIGKILL = a crashed Pod, SIGTERM = a deleted one). */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after graceMs; resolves with how it exited. Safe to call more than once. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Last lines of output, for failure messages. */
  tail(lines?: number): string;
}

/** Prometheus text format (as prom-client writes it): one sample per non-comment line. */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (l[1] !== undefined) labels[l[1]] = (l[2] ?? '').replace(/\\(.)/g, '$1');
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `where`. */
export function metricSum(
  samples: readonly MetricSample[],
  name: string,
  where: Record<string, string> = {},
): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export function parseLogLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        const parsed: unknown = JSON.parse(l);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as LogLine;
      } catch {
        // Not JSON: kept as raw text below.
      }
      return { msg: l, raw: true };
    });
}

/**
 * Starts `node --import tsx src/cli/main.ts run` with the runner's Node (24; the machine's plain
 * `node` may be older) and resolves once it has announced its health port. Run directly rather than
 * through npx or the tsx CLI, so a signal reaches the operator exactly once and the exit code is its own.
 */
export async function startOperatorProcess(opts: OperatorProcessOptions): Promise<OperatorProcess> {
  const dir = mkdtempSync(join(tmpdir(), `operator-${opts.name}-`));
  const logPath = join(dir, 'output.log');
  const args = [
    ...(opts.compiled ? [COMPILED_MAIN] : ['--import', 'tsx', MAIN]),
    'run',
    `--kubeconfig=${opts.kubeconfigPath}`,
    '--health-port=0',
    '--health-host=127.0.0.1',
    ...(opts.args ?? []),
    // Provider health checks reach every ClusterOidcProvider of the shared control plane, i.e. the
    // registration servers of test files running alongside: only tests that ask for them get them.
    ...((opts.args ?? []).some((a) => a.startsWith('--provider-check-interval'))
      ? []
      : ['--provider-check-interval=0']),
  ];
  const proc: ManagedProcess = startProcess(`operator ${opts.name}`, process.execPath, args, {
    logPath,
    // KUBECONFIG too, so nothing can fall back to the runner's admin credentials.
    env: { KUBECONFIG: opts.kubeconfigPath, ...opts.env },
  });
  let finalOutput: string | undefined;
  const output = (): string => {
    if (finalOutput !== undefined) return finalOutput;
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const tail = (lines = 30): string => output().trimEnd().split('\n').slice(-lines).join('\n');
  const exitedError = (): Error | undefined =>
    proc.exit === undefined
      ? undefined
      : new Error(
          `operator ${opts.name} exited (code ${proc.exit.code}, signal ${proc.exit.signal}); last output:\n${tail()}`,
        );
  let stopping: Promise<ExitInfo> | undefined;
  const stop = (graceMs = 15_000): Promise<ExitInfo> => {
    stopping ??= (async () => {
      await stopProcess(proc, graceMs);
      const info = await proc.exited;
      finalOutput = output();
      rmSync(dir, { recursive: true, force: true });
      return info;
    })();
    return stopping;
  };

  let port: number;
  try {
    const announced = await waitFor(() => parseLogLines(output()).find((l) => l.msg === HEALTH_MSG), {
      description: `operator ${opts.name} to announce its health port`,
      timeoutMs: opts.startTimeoutMs ?? 30_000,
      intervalMs: 100,
      fatal: exitedError,
    });
    port = Number(announced.port);
    if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in ${JSON.stringify(announced)}`);
  } catch (error) {
    await stop(2_000);
    throw error;
  }
  const baseUrl = `http://127.0.0.1:${port}`;

  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  };

  return {
    name: opts.name,
    pid: proc.pid,
    port,
    baseUrl,
    get exit() {
      return proc.exit;
    },
    exited: proc.exited,
    output,
    logs: () => parseLogLines(output()),
    get,
    metrics: async () => {
      const res = await get('/metrics');
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      return parseMetrics(res.body);
    },
    waitForLog: (match, w) =>
      waitFor(() => parseLogLines(output()).find(match), {
        description: `operator ${opts.name}: ${w.description}`,
        timeoutMs: w.timeoutMs ?? 30_000,
        intervalMs: 100,
        fatal: exitedError,
      }),
    waitReady: async (timeoutMs = 30_000) => {
      await waitFor(async () => (await get('/readyz')).status === 200, {
        description: `operator ${opts.name} /readyz 200`,
        timeoutMs,
        intervalMs: 100,
        fatal: exitedError,
      });
    },
    kill: (signal) => {
      if (proc.exit !== undefined) return;
      // Keep the runner alive until the exit is seen (processes.ts unrefs the child).
      proc.child.ref();
      try {
        process.kill(-proc.pid, signal);
      } catch {
        // ESRCH: already gone.
      }
    },
    stop,
    tail,
  };
}

/** Stops every operator given, even when some stops fail; for afterAll hooks. */
export async function stopAll(procs: readonly (OperatorProcess | undefined)[]): Promise<void> {
  await Promise.allSettled(procs.map((p) => p?.stop(5_000)));
}
