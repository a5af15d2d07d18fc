// Runs the real operator CLI as a child process, the way users run it, for the demo and the
// benchmark: from source through tsx (the demo), or compiled (`node dist/cli/main.js run`, the
// benchmark, which must measure what the image runs). The process is managed like the control plane's (own process group,
// watchdog, killed at hard exit); its JSON log goes to a file that is followed line by line.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ExitInfo, logTail, startProcess, stopProcess } from '../processes.js';
import { type FollowedLog, followLog } from './log-follower.js';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
// tsx's package export "." is its ESM loader; resolved to a file URL so the child does not depend
// on its working directory to find it.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Logged by the controller once its informers are synced (src/controller/controller.ts). */
const STARTED_MSG = 'starting workers';
/** Logged by run.ts with the health server's port. */
const HEALTH_MSG = 'serving /healthz, /readyz and /metrics';

export interface OperatorLogEntry {
  /** pino level label (info, warn, ...), or 'raw' for a line that is not JSON (e.g. a Node warning). */
  level: string;
  msg: string;
  /** The remaining fields, without pino's bookkeeping (time, pid, hostname, name). */
  fields: Record<string, unknown>;
  time?: string;
}

export interface OperatorChildOptions {
  kubeconfigPath: string;
  /** Further `run` flags, e.g. ['--max-concurrent-reconciles', '32']. */
  args?: readonly string[];
  /** Receives stdout and stderr (JSON lines). */
  logPath: string;
  /** Called for every log line in order, shortly after it is written. */
  onLog?: (entry: OperatorLogEntry) => void;
  startTimeoutMs?: number;
  /** Run this compiled entry (e.g. dist/cli/main.js) with plain node instead of the source through tsx. */
  compiledMain?: string;
  /** Node flags before the script, e.g. ['--max-semi-space-size=1']. */
  nodeArgs?: readonly string[];
  /** Extra environment, e.g. the image's MALLOC_ARENA_MAX. */
  env?: Record<string, string>;
}

export interface OperatorChild {
  pid: number;
  logPath: string;
  /** Port of /healthz, /readyz and /metrics, when the health server is on. */
  healthPort: number | undefined;
  /** Log lines seen so far, by level. */
  levelCounts: Record<string, number>;
  exitInfo(): ExitInfo | undefined;
  /** SIGTERM (the operator drains its queue), SIGKILL after a grace period; flushes the log. */
  stop(): Promise<void>;
}

const BOOKKEEPING = new Set(['level', 'msg', 'time', 'pid', 'hostname', 'name']);

export function parseOperatorLog(line: string): OperatorLogEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { level: 'raw', msg: line, fields: {} };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { level: 'raw', msg: line, fields: {} };
  }
  const record = parsed as Record<string, unknown>;
  const fields = Object.fromEntries(Object.entries(record).filter(([k]) => !BOOKKEEPING.has(k)));
  return {
    level: typeof record.level === 'string' ? record.level : 'info',
    msg: typeof record.msg === 'string' ? record.msg : '',
    fields,
    ...(typeof record.time === 'string' ? { time: record.time } : {}),
  };
}

function formatValue(value: unknown): string {
  const text = Array.isArray(value)
    ? value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',')
    : typeof value === 'string'
      ? value
      : JSON.stringify(value);
  const short = text.length > 160 ? `${text.slice(0, 157)}...` : text;
  return /\s/.test(short) ? JSON.stringify(short) : short;
}

/** One short line: `12:00:01.234 INFO  registered client oidcclient=demo/web clientId=...`. */
export function formatOperatorLog(entry: OperatorLogEntry): string {
  if (entry.level === 'raw') return entry.msg;
  const clock = entry.time?.slice(11, 23) ?? '';
  const level = entry.level.toUpperCase().padEnd(5);
  const fields = Object.entries(entry.fields).map(([k, v]) => `${k}=${formatValue(v)}`);
  return [clock, level, entry.msg, ...fields].filter(Boolean).join(' ');
}

export async function startOperatorChild(opts: OperatorChildOptions): Promise<OperatorChild> {
  const entry = opts.compiledMain ? [opts.compiledMain] : ['--import', TSX_LOADER, MAIN];
  const args = [
    ...(opts.nodeArgs ?? []),
    ...entry,
    'run',
    '--kubeconfig',
    opts.kubeconfigPath,
    ...(opts.args ?? []),
  ];
  // No color codes or pretty printing from anything in the child: the log is parsed.
  const proc = startProcess('operator', process.execPath, args, {
    logPath: opts.logPath,
    env: { ...opts.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const levelCounts: Record<string, number> = {};
  let healthPort: number | undefined;
  let started = false;
  let follower: FollowedLog | undefined;

  const handle: OperatorChild = {
    pid: proc.pid,
    logPath: opts.logPath,
    get healthPort() {
      return healthPort;
    },
    levelCounts,
    exitInfo: () => proc.exit,
    stop: async () => {
      await stopProcess(proc);
      await follower?.stop();
    },
  };

  const startedSignal = Promise.withResolvers<void>();
  follower = followLog(opts.logPath, (line) => {
    const entry = parseOperatorLog(line);
    levelCounts[entry.level] = (levelCounts[entry.level] ?? 0) + 1;
    if (entry.msg === HEALTH_MSG && typeof entry.fields.port === 'number') healthPort = entry.fields.port;
    if (entry.msg === STARTED_MSG && !started) {
      started = true;
      startedSignal.resolve();
    }
    opts.onLog?.(entry);
  });

  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      startedSignal.promise,
      proc.exited.then((e) => {
        throw new Error(`the operator exited during start (code ${e.code}, signal ${e.signal})`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the operator did not sync its caches within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    await handle.stop();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n--- last lines of ${opts.logPath} ---\n${await logTail(opts.logPath)}`);
  } finally {
    clearTimeout(timer);
  }
  return handle;
}
