import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type GeneratedFile, generatedFiles } from '../../../src/api/generate.js';

const root = resolve(import.meta.dirname, '../../..');

/** Paths whose content on disk differs from the generator's output (missing files included). */
async function staleFiles(files: readonly GeneratedFile[]): Promise<string[]> {
  const stale: string[] = [];
  for (const file of files) {
    const onDisk = await readFile(resolve(root, file.path), 'utf8').catch(() => undefined);
    if (onDisk !== file.content) stale.push(file.path);
  }
  return stale;
}

describe('generated files', () => {
  it('are up to date with src/api/schema.ts (run `npm run generate` if this fails)', async () => {
    expect(await staleFiles(generatedFiles())).toEqual([]);
  });

  it('covers the CRD copies and the TypeScript types', () => {
    const paths = generatedFiles().map((f) => f.path);
    expect(paths).toContain('crds/oidc.dcr-operator.dev_oidcclients.yaml');
    expect(paths).toContain('helm/oidc-client-operator/crds/oidc.dcr-operator.dev_oidcproviders.yaml');
    expect(paths).toContain('manifests/base/crds/oidc.dcr-operator.dev_clusteroidcproviders.yaml');
    expect(paths).toContain('src/api/types.generated.ts');
  });

  it('the comparison detects a changed, an appended-to and a missing file', async () => {
    const files = generatedFiles();
    const [first, second, ...rest] = files;
    if (!first || !second) throw new Error('expected at least two generated files');
    const altered = [
      { ...first, content: first.content.replace('OidcClient', 'OidcKlient') },
      { ...second, content: `${second.content}\n` },
      { path: 'crds/does-not-exist.yaml', content: 'x' },
      ...rest,
    ];
    expect(first.content).toContain('OidcClient');
    expect(await staleFiles(altered)).toEqual([first.path, second.path, 'crds/does-not-exist.yaml']);
  });
});
