import { spawn } from 'node:child_process';

export interface ToolResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ToolOptions {
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Short-lived tools only: a hung kubectl must fail the test, not stall the run. */
  timeoutMs?: number;
}

/**
 * Runs a short-lived command (kubectl, helm, openssl) to completion and never throws on a non-zero
 * exit: callers decide whether failure is expected (e.g. asserting that RBAC forbids something).
 */
export function runTool(file: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timeoutMs = opts.timeoutMs ?? 120_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut ? `${stderr}\n[harness] killed after ${timeoutMs} ms` : stderr,
        code: code ?? (signal ? 128 : 1),
      });
    });
    // EPIPE when the tool exits before reading stdin would otherwise be an unhandled error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Like runTool but throws with the command line and stderr when the exit code is not 0. */
export async function runToolOrThrow(
  file: string,
  args: readonly string[],
  opts: ToolOptions = {},
): Promise<ToolResult> {
  const result = await runTool(file, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} exited ${result.code}\n${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}
