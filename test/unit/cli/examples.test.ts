import { readdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkManifestText } from '../../../src/cli/manifests.js';

const examplesDir = resolve(import.meta.dirname, '../../../examples');

describe('examples/', () => {
  it('holds the documented examples', async () => {
    expect((await readdir(examplesDir)).sort()).toEqual(
      expect.arrayContaining([
        'iam-provider.yaml',
        'oidcclient-adopt.yaml',
        'oidcclient-web.yaml',
        'cluster-provider-shared.yaml',
        'provider-private-ca-and-token.yaml',
      ]),
    );
  });

  const files = readdirSync(examplesDir).filter((f) => /\.ya?ml$/.test(f));
  it.each(files)('%s passes validate', async (file) => {
    const report = checkManifestText(await readFile(join(examplesDir, file), 'utf8'));
    expect(report.issues).toEqual([]);
    expect(report.validated).toBeGreaterThan(0);
  });

  it('the clients use the example provider', async () => {
    const provider = await readFile(join(examplesDir, 'iam-provider.yaml'), 'utf8');
    expect(provider).toMatch(/kind: OidcProvider\nmetadata:\n {2}name: iam\n/);
    expect(provider).toContain('issuerUrl: https://iam.example.org/');
    const clients = (await readdir(examplesDir)).filter((f) => f.startsWith('oidcclient-'));
    expect(clients.length).toBeGreaterThanOrEqual(5);
    for (const file of clients) {
      expect(await readFile(join(examplesDir, file), 'utf8')).toMatch(/providerRef:\n {4}name: iam\n/);
    }
  });
});
