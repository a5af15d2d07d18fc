// The README's Argo CD health checks are the files the GitOps e2e test runs through gopher-lua
// (examples/argocd/*.lua), and its Flux health expressions are those of examples/flux: one source.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../../..');
const read = (path: string) => readFile(resolve(ROOT, path), 'utf8');

describe('README GitOps section', () => {
  it.each(['examples/argocd/health-oidcclient.lua', 'examples/argocd/health-oidcprovider.lua'])(
    'embeds %s verbatim',
    async (file) => {
      const readme = await read('README.md');
      expect(readme).toContain(`\`\`\`lua\n${await read(file)}\`\`\``);
    },
  );

  it('shows the healthCheckExprs of examples/flux/oidc-clients.yaml', async () => {
    const readme = await read('README.md');
    const docs = parseAllDocuments(await read('examples/flux/oidc-clients.yaml')).map((d) => d.toJS());
    const exprs = docs.find((d) => d.kind === 'Kustomization')?.spec?.healthCheckExprs as Record<
      string,
      string
    >[];
    expect(exprs.map((e) => e.kind)).toEqual(['OidcClient', 'OidcProvider', 'ClusterOidcProvider']);
    for (const e of exprs)
      for (const key of ['current', 'failed']) expect(readme).toContain(`${key}: "${e[key]}"`);
  });
});
