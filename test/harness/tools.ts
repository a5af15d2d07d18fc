import { dirname, join } from 'node:path';
import { runTool, type ToolResult } from './exec.js';

export interface KubectlOptions {
  input?: string;
  namespace?: string;
  env?: Record<string, string>;
  /** Kill it after this long (default 120 s; the benchmark's bulk apply and delete need more). */
  timeoutMs?: number;
}

/** Runs the built kubectl against `kubeconfig`; `opts.env` wins, so a test can act as another identity. */
export function kubectl(
  binDir: string,
  kubeconfig: string,
  args: readonly string[],
  opts: KubectlOptions = {},
): Promise<ToolResult> {
  const fullArgs = opts.namespace === undefined ? args : ['--namespace', opts.namespace, ...args];
  return runTool(join(binDir, 'kubectl'), fullArgs, {
    input: opts.input,
    env: { KUBECONFIG: kubeconfig, ...opts.env },
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
}

/**
 * Runs the built helm against `kubeconfig`. Helm's cache/config/data folders are kept next to the
 * kubeconfig (the control plane's temp dir) so tests never read or write the user's ~/.config/helm.
 */
export function helm(
  binDir: string,
  kubeconfig: string,
  args: readonly string[],
  opts: { env?: Record<string, string> } = {},
): Promise<ToolResult> {
  const home = join(dirname(kubeconfig), 'helm');
  return runTool(join(binDir, 'helm'), args, {
    env: {
      KUBECONFIG: kubeconfig,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      ...opts.env,
    },
  });
}
