// `npm run demo` end to end: the script runs as a child process exactly as a user starts it (its own
// control plane, registration server and operator), and the test reads what it prints, pokes at the
// cluster it keeps with --keep, interrupts it, and checks that nothing is left running.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { kubectl, waitFor } from '../harness/kube.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const binDir = inject('binDir');

interface DemoRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function startDemo(args: string[]): DemoRun {
  // Through the project's Node (this runner's) with tsx, as `npm run demo` does; the binaries are
  // the ones the global setup resolved, so the build script is not consulted.
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, K8S_BIN_DIR: binDir, KUBECONFIG: '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitForOutput(run: DemoRun, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return waitFor(() => pattern.exec(run.output()) ?? (run.child.exitCode !== null && undefined), {
    description: `demo output matching ${pattern}`,
    timeoutMs,
    intervalMs: 100,
    fatal: () =>
      run.child.exitCode === null || pattern.test(run.output())
        ? undefined
        : new Error(`demo exited ${run.child.exitCode} before printing ${pattern}:\n${run.output()}`),
  });
}

/**
 * Processes whose command line or environment mentions `needle`: the control plane's temp dir is in
 * the arguments of its processes and the operator, and in the KUBECONFIG of every kubectl the demo runs.
 */
async function processesMentioning(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
      if (cmdline.includes(needle) || environ.includes(needle)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

async function expectNothingLeft(output: string): Promise<void> {
  const dir = /\(dir (\/\S+)\)/.exec(output)?.[1];
  expect(dir, 'the demo prints its control plane dir').toBeTruthy();
  if (!dir) return;
  expect(existsSync(dir), `${dir} removed`).toBe(false);
  // Processes are reaped asynchronously after their group is killed: give them a moment.
  let left = await processesMentioning(dir);
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    left = await processesMentioning(dir);
  }
  expect(left, `processes still using ${dir}`).toEqual([]);
}

describe('npm run demo', () => {
  it('rejects an unknown flag with usage and exit code 2, starting nothing', async () => {
    const run = startDemo(['--bogus']);
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain("Unknown option '--bogus'");
    expect(run.output()).toContain('usage: npm run demo');
    expect(run.output()).not.toContain('[control-plane]');
  });

  it('registers, shows, proves, updates and deletes the example client; --keep stays up until Ctrl-C', async () => {
    const run = startDemo(['--keep']);
    try {
      const keepLine = await waitForOutput(run, /export KUBECONFIG=(\S+)/, 50_000);
      const out = run.output();

      // The commands are shown as they run, the operator's log is interleaved compactly.
      expect(out).toContain('$ kubectl -n demo apply -f examples/oidcclient-web.yaml');
      expect(out).toContain('$ kubectl -n demo wait --for=condition=Ready oidcclient/my-web-app');
      expect(out).toMatch(
        /operator │ \S+ INFO {2}registered client oidcclient=demo\/my-web-app clientId=\S+/,
      );
      expect(out).toMatch(/provider │ POST \/iam\/api\/client-registration → 201/);
      // kubectl get oidcclients, with the client Ready and its client id.
      const row = /my-web-app\s+True\s+Registered\s+([0-9a-f-]{36})\s+iam/.exec(out);
      expect(row, out).not.toBeNull();
      const clientId = row?.[1] as string;

      // The Secret: public values shown, the secret redacted with its length; no token in clear.
      expect(out).toContain(`client_id        ${clientId}`);
      expect(out).toMatch(/client_secret {4}<redacted, \d+ bytes>/);
      expect(out).toMatch(/token_endpoint {3}http:\/\/127\.0\.0\.1:\d+\/token/);
      expect(out, 'no long random string (client secret, registration access token) is printed').not.toMatch(
        /[A-Za-z0-9_-]{40,}/,
      );

      // Credentials proven, update reached the provider, delete removed the client there.
      expect(out).toContain('✓ the provider authenticated the client (no invalid_client)');
      expect(out).toContain('✓ a wrong secret is refused with invalid_client');
      expect(out).toContain('callback-v2"]');
      expect(out).toContain('✓ the provider has the new redirect URI');
      expect(out).toMatch(
        /operator │ \S+ INFO {2}updated client oidcclient=demo\/my-web-app .*redirect_uris/,
      );
      expect(out).toContain(`✓ client ${clientId} is gone at the provider`);
      expect(out).toMatch(/Demo finished in [\d.]+ s/);

      // --keep: the printed kubeconfig and kubectl reach the live cluster with the re-registered client.
      const kubeconfig = keepLine[1] as string;
      expect(out).toContain(`kubectl: ${join(binDir, 'kubectl')}`);
      const get = await kubectl(binDir, kubeconfig, [
        '-n',
        'demo',
        'get',
        'oidcclient',
        'my-web-app',
        '-o',
        'json',
      ]);
      expect(get.code, get.stderr).toBe(0);
      const cr = JSON.parse(get.stdout) as { status?: { clientId?: string } };
      expect(cr.status?.clientId).toMatch(/^[0-9a-f-]{36}$/);
      expect(cr.status?.clientId).not.toBe(clientId);

      // Positive control for the leak check below: while kept, the processes are found.
      const dir = /\(dir (\/\S+)\)/.exec(out)?.[1] as string;
      const running = (await processesMentioning(dir)).join('\n');
      for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'src/cli/main.ts run']) {
        expect(running).toContain(name);
      }

      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);
      expect(run.output()).toContain('demo: everything stopped and removed');
      await expectNothingLeft(run.output());
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });

  it('tears everything down and exits 130 when interrupted midway', async () => {
    const run = startDemo([]);
    try {
      await waitForOutput(run, /== 3\. Register the example client/, 50_000);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(130);
      expect(run.output()).toContain('demo: SIGINT received, tearing down');
      expect(run.output()).not.toContain('Demo finished');
      await expectNothingLeft(run.output());
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });
});
