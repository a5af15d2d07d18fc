// `npm run demo -- --gitops`: the Git-driven lifecycle with Flux, for a newcomer. Starts the local
// stack (control plane, IAM-like registration server, operator), a Git server on loopback and Flux's
// source-controller and kustomize-controller (built once by scripts/build-flux.sh), then commits
// OidcClients, changes one, removes one, and shows what Kubernetes and the provider hold after each.
import { styleText } from 'node:util';
import { runTool } from '../test/harness/exec.js';
import { type Flux, fluxBinDir, installFluxCrds, requestReconcile, startFlux } from '../test/harness/flux.js';
import { startGitServer } from '../test/harness/git-server.js';
import { type LocalStack, startLocalStack } from '../test/harness/local-stack/index.js';
import { formatOperatorLog } from '../test/harness/local-stack/operator-child.js';
import type { Teardown } from '../test/harness/local-stack/teardown.js';
import { waitFor } from '../test/harness/wait.js';

const NS = 'team-a';
const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const dim = (text: string): string => styleText('dim', text);
const G = 'apiVersion: oidc.dcr-operator.dev/v1alpha1';
const client = (name: string, uri: string) =>
  `${G}\nkind: OidcClient\nmetadata: { name: ${name} }\nspec:\n  providerRef: { name: iam }\n  redirectUris: [${uri}]\n`;

export async function demoGitops(teardown: Teardown): Promise<void> {
  const started = Date.now();
  let n = 0;
  const step = (title: string) => out(`\n${styleText('bold', `== ${++n}. ${title}`)}`);
  step('Start a control plane, an IAM-like registration server, the operator, a Git server and Flux');
  out(dim('  (the first run builds Flux from its Go modules: a few minutes, once)'));
  const fluxDir = await fluxBinDir();
  const stack: LocalStack = await startLocalStack({
    teardown,
    log: (line) => out(dim(line)),
    operatorArgs: ['--health-port', '0', '--deletion-timeout', '30s', '--provider-timeout', '5s'],
    onOperatorLog: (entry) => out(dim(`  operator │ ${formatOperatorLog(entry)}`)),
  });
  const kubeconfig = stack.controlPlane.kubeconfigPath;
  const binDir = stack.controlPlane.binDir;
  const kubectl = async (args: string[], input?: string, quiet = false) => {
    if (!quiet) out(styleText('cyan', `$ kubectl ${args.join(' ')}`));
    const r = await runTool(stack.kubectlPath, args, { input, env: { KUBECONFIG: kubeconfig } });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    if (!quiet && r.stdout.trim()) out(r.stdout.trimEnd().replace(/^/gm, '    '));
    return r.stdout;
  };
  const git = await startGitServer();
  teardown.add('git server', () => git.close());
  await installFluxCrds(binDir, kubeconfig, fluxDir);
  const flux: Flux = await startFlux({ fluxDir, kubeconfigPath: kubeconfig });
  teardown.add('flux', () => flux.stop());
  out(`  Git repository ${git.url}; Flux artifacts at ${flux.artifactServer}`);
  await kubectl(['create', 'namespace', NS], undefined, true);

  const applied = async (sha: string) => {
    await waitFor(
      async () => {
        const k = JSON.parse(
          await kubectl(['-n', NS, 'get', 'kustomization', 'oidc', '-o', 'json'], undefined, true),
        );
        const ready = k.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
        return ready?.status === 'True' && String(k.status?.lastAppliedRevision).endsWith(sha);
      },
      {
        description: `Flux to apply ${sha} and the clients to be Ready`,
        timeoutMs: 120_000,
        intervalMs: 500,
      },
    );
    await kubectl(['-n', NS, 'get', 'kustomizations,oidcclients']);
  };
  const commit = async (files: Record<string, string | null>, message: string) => {
    const sha = await git.commit(files, message);
    out(styleText('cyan', `$ git commit -m '${message}' && git push   # ${sha.slice(0, 8)}`));
    return sha;
  };
  const sync = async (files: Record<string, string | null>, message: string) => {
    const sha = await commit(files, message);
    await requestReconcile(binDir, kubeconfig, 'gitrepository/config', NS);
    await applied(sha);
  };
  const providerHas = async () => {
    for (const c of await stack.provider.store.list())
      out(`    provider │ ${c.clientId} redirect_uris=${JSON.stringify(c.metadata.redirect_uris)}`);
  };

  step('Commit an OidcProvider and two OidcClients; point Flux at the repository (wait: true)');
  const first = await commit(
    {
      'oidc/provider.yaml': `${G}\nkind: OidcProvider\nmetadata: { name: iam }\nspec:\n  issuerUrl: ${stack.provider.issuer}\n`,
      'oidc/shop.yaml': client('shop', 'https://shop.example.org/callback'),
      'oidc/blog.yaml': client('blog', 'https://blog.example.org/callback'),
    },
    'OIDC clients for team A',
  );
  const fluxObjects = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: config }
spec: { interval: 1m, url: '${git.url}', ref: { branch: main } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: oidc }
spec:
  interval: 10m
  retryInterval: 5s
  timeout: 1m
  sourceRef: { kind: GitRepository, name: config }
  path: ./oidc
  targetNamespace: ${NS}
  prune: true
  wait: true
`;
  out(fluxObjects.replace(/^/gm, '    '));
  await kubectl(['-n', NS, 'apply', '-f', '-'], fluxObjects);
  await applied(first);
  await providerHas();

  step('Change a redirect URI in Git');
  await sync({ 'oidc/shop.yaml': client('shop', 'https://shop.example.org/cb2') }, 'shop: new callback');
  await providerHas();

  step('Remove a client from Git: Flux prunes it, the operator deletes it at the provider');
  await sync({ 'oidc/blog.yaml': null }, 'blog retired');
  await providerHas();
  await kubectl(['-n', NS, 'get', 'secrets']);

  out(`\n${styleText('bold', `GitOps demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.`)}`);
  await kubectl(
    ['-n', NS, 'delete', 'kustomizations,gitrepositories', '--all', '--timeout=60s'],
    undefined,
    true,
  );
}
