// A complete local installation for the demo and the benchmark: the real control plane with the
// operator's CRDs, the IAM-like registration server in this process, and the operator CLI as a
// child process. Every part is registered with the Teardown as soon as it runs.
import { join } from 'node:path';
import { type ControlPlane, resolveBinDir, startControlPlane } from '../control-plane.js';
import {
  type RegistrationServer,
  type RegistrationServerOptions,
  startRegistrationServer,
} from '../registration-server/index.js';
import { installProjectCrds } from './crds.js';
import { type OperatorChild, type OperatorLogEntry, startOperatorChild } from './operator-child.js';
import type { Teardown } from './teardown.js';

export interface LocalStackOptions {
  teardown: Teardown;
  /** Progress lines (control-plane milestones, what is being started). */
  log: (line: string) => void;
  /** `run` flags besides --kubeconfig. */
  operatorArgs: readonly string[];
  onOperatorLog?: (entry: OperatorLogEntry) => void;
  /** See OperatorChildOptions: the compiled entry and Node flags (the benchmark measures dist/). */
  operatorCompiledMain?: string;
  operatorNodeArgs?: readonly string[];
  operatorEnv?: Record<string, string>;
  registration?: RegistrationServerOptions;
  /** Runs on the ready control plane before the operator starts (the benchmark's apply alone). */
  beforeOperator?: (controlPlane: ControlPlane, provider: RegistrationServer) => Promise<void>;
}

export interface LocalStack {
  controlPlane: ControlPlane;
  provider: RegistrationServer;
  operator: OperatorChild;
  kubectlPath: string;
}

/** Finds (or builds, on first use) the Kubernetes binaries, saying so when that takes a while. */
export async function locateBinaries(log: (line: string) => void): Promise<string> {
  const slow = setTimeout(() => {
    log(
      'Kubernetes binaries are not cached yet: building them from source with scripts/build-k8s.sh.\n' +
        'A cold build takes about 16 minutes (once; later runs start in seconds). Progress follows.',
    );
  }, 2_000);
  try {
    const binDir = await resolveBinDir();
    // startControlPlane resolves again; this makes that instant and silent.
    process.env.K8S_BIN_DIR = binDir;
    return binDir;
  } finally {
    clearTimeout(slow);
  }
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const binDir = await locateBinaries(opts.log);
  const controlPlane = await startControlPlane({
    log: opts.log,
    beforeControllerManager: installProjectCrds,
  });
  opts.teardown.add('control plane', () => controlPlane.stop());

  const provider = await startRegistrationServer(opts.registration ?? { mode: 'iam' });
  opts.teardown.add('registration server', () => provider.close());
  opts.log(`[provider] IAM-like registration server at ${provider.issuer}`);

  await opts.beforeOperator?.(controlPlane, provider);
  const logPath = join(controlPlane.dir, 'operator.log');
  const operator = await startOperatorChild({
    kubeconfigPath: controlPlane.kubeconfigPath,
    args: opts.operatorArgs,
    logPath,
    onLog: opts.onOperatorLog,
    compiledMain: opts.operatorCompiledMain,
    nodeArgs: opts.operatorNodeArgs,
    env: opts.operatorEnv,
  });
  opts.teardown.add('operator', () => operator.stop());
  opts.log(`[operator] pid ${operator.pid}, log ${logPath}`);

  return { controlPlane, provider, operator, kubectlPath: join(binDir, 'kubectl') };
}
