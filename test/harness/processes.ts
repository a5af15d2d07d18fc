import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  name: string;
  /** Also the process group id: every managed process leads its own group. */
  pid: number;
  logPath: string;
  /** Set once the process has exited. */
  exit: ExitInfo | undefined;
  exited: Promise<ExitInfo>;
  child: ChildProcess;
  /** The watchdog guarding this group (see startWatchdog); stopped together with the process. */
  watchdog: ChildProcess;
}

/** Group ids (= leader pids) this module started and has not yet seen exit; nothing else is ever killed. */
const liveGroups = new Set<number>();
let handlersInstalled = false;

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Synchronous cleanups (e.g. removing a temp dir) to run once the groups are killed at hard exit. */
const exitCleanups = new Set<() => void>();

function hardExitCleanup(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
  liveGroups.clear();
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // Best effort: the runner is going down anyway.
    }
  }
  exitCleanups.clear();
}

/**
 * The processes run in their own groups, so neither Ctrl-C nor the runner's death reaches them.
 * These handlers clean up on a normal exit and on the usual termination signals (vitest runs no global
 * teardown on Ctrl-C); the per-process watchdog covers SIGKILL of the runner, where no handler runs.
 */
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', hardExitCleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      hardExitCleanup();
      // Adding a listener disabled the default "exit on signal"; restore it unless someone else
      // (the runner) is still listening and will exit in its own way.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * Registers a synchronous cleanup to run at hard exit, after every process group is killed; returns
 * the function that unregisters it (call it once the orderly stop has done the work).
 */
export function onHardExit(cleanup: () => void): () => void {
  installExitHandlers();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

/**
 * A detached shell that outlives a SIGKILLed runner: it polls the runner's pid and, once the runner is
 * gone, terminates the group it guards. It ends by itself as soon as the guarded group is gone.
 * /bin/sh may be dash, whose kill builtin rejects `--`: a negative pid alone names the group.
 */
function startWatchdog(pgid: number): ChildProcess {
  const script = [
    'while kill -0 "$0" 2>/dev/null; do',
    '  kill -0 "-$1" 2>/dev/null || exit 0',
    '  sleep 1',
    'done',
    'kill -0 "-$1" 2>/dev/null || exit 0',
    'kill -TERM "-$1"; sleep 3',
    'kill -0 "-$1" 2>/dev/null && kill -KILL "-$1"',
  ].join('\n');
  const watchdog = spawn('/bin/sh', ['-c', script, String(process.pid), String(pgid)], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  return watchdog;
}

export function startProcess(
  name: string,
  file: string,
  args: readonly string[],
  opts: { logPath: string; env?: Record<string, string> },
): ManagedProcess {
  installExitHandlers();
  // The log goes straight to a file descriptor, not through Node pipes: the process keeps logging (and
  // is not SIGPIPEd) even when the runner is stuck or gone.
  const fd = openSync(opts.logPath, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(file, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...opts.env },
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    // The spawn failure is reported through 'error' too; swallow it there, throw it here.
    child.once('error', () => {});
    throw new Error(`cannot start ${name} (${file}): no pid`);
  }
  liveGroups.add(pid);
  // Unref'd so a runner that forgets stop() still exits (its 'exit' handler then kills the group).
  child.unref();

  let resolveExited: (info: ExitInfo) => void = () => {};
  const managed: ManagedProcess = {
    name,
    pid,
    logPath: opts.logPath,
    exit: undefined,
    child,
    watchdog: startWatchdog(pid),
    exited: new Promise((resolve) => {
      resolveExited = resolve;
    }),
  };
  const onExit = (info: ExitInfo): void => {
    if (managed.exit !== undefined) return;
    managed.exit = info;
    liveGroups.delete(pid);
    resolveExited(info);
  };
  child.once('exit', (code, signal) => onExit({ code, signal }));
  child.once('error', () => onExit({ code: null, signal: null }));
  return managed;
}

/** SIGTERM to the process group, SIGKILL after `graceMs` if the leader has not exited. */
export async function stopProcess(p: ManagedProcess, graceMs = 10_000): Promise<void> {
  if (p.exit !== undefined) return;
  // Keep Node alive until the exit is seen; otherwise an otherwise idle runner could quit mid-stop.
  p.child.ref();
  signalGroup(p.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const exitedInTime = await Promise.race([
    p.exited.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (!exitedInTime) {
    signalGroup(p.pid, 'SIGKILL');
    await p.exited;
  }
  // Its job is done; it would notice within a second, but a test run should end with nothing left.
  if (p.watchdog.pid !== undefined && p.watchdog.exitCode === null) signalGroup(p.watchdog.pid, 'SIGTERM');
}

export async function logTail(logPath: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(no log: ${e instanceof Error ? e.message : String(e)})`;
  }
}
