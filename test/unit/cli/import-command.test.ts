import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCommand, parseImportArgs } from '../../../src/cli/import-command.js';
import { UsageError } from '../../../src/cli/io.js';
import { fakeIo } from './fake-io.js';

const fixture = resolve(import.meta.dirname, '../../fixtures/iam-client.json');

describe('parseImportArgs', () => {
  it('applies defaults', () => {
    expect(parseImportArgs(['--from', 'c.json', '--name', 'web'])).toEqual({
      from: 'c.json',
      name: 'web',
      namespace: undefined,
      provider: 'iam',
      providerDefaulted: true,
      providerKind: 'OidcProvider',
      extraMetadata: 'none',
      output: '-',
    });
    expect(
      parseImportArgs(['--from', 'c.json', '--name', 'web', '--extra-metadata', 'a,b', '--extra-metadata=c'])
        ?.extraMetadata,
    ).toEqual(['a', 'b', 'c']);
    expect(
      parseImportArgs(['--from', 'c.json', '--name', 'web', '--extra-metadata', 'all'])?.extraMetadata,
    ).toBe('all');
    expect(
      parseImportArgs([
        '--from=c.json',
        '--name=web',
        '-n',
        'apps',
        '--provider',
        'iam-prod',
        '--provider-kind',
        'ClusterOidcProvider',
        '-o',
        'out.yaml',
      ]),
    ).toMatchObject({
      namespace: 'apps',
      provider: 'iam-prod',
      providerDefaulted: false,
      output: 'out.yaml',
    });
    expect(parseImportArgs(['--help'])).toBeUndefined();
  });

  it.each([
    [[], /--from FILE is required/],
    [['--from', 'c.json'], /--name NAME is required/],
    [['--from', 'c.json', '--name', 'Web'], /--name must be a DNS-1123 subdomain/],
    [['--from', 'c.json', '--name', 'web', '--namespace', 'a.b'], /--namespace/],
    [['--from', 'c.json', '--name', 'web', '--provider', 'IAM'], /--provider must/],
    [['--from', 'c.json', '--name', 'web', '--provider-kind', 'Provider'], /--provider-kind must be one of/],
    [['--from', 'c.json', '--name', 'web', 'extra'], /unexpected argument: extra/],
    [['--from', 'c.json', '--name', 'web', '--bogus'], /bogus/],
    [['--from', 'c.json', '--name', 'web', '--extra-metadata', 'all,x'], /cannot be combined/],
    [['--from', 'c.json', '--name', 'web', '--extra-metadata', 'a,'], /needs field names/],
  ])('%j is a usage error', (args, message) => {
    expect(() => parseImportArgs(args)).toThrow(UsageError);
    expect(() => parseImportArgs(args)).toThrow(message);
  });
});

describe('importCommand', () => {
  let dir: string;
  let secretValues: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'import-cmd-'));
    const json = JSON.parse(await readFile(fixture, 'utf8')) as Record<string, string>;
    secretValues = [json.client_secret ?? '', json.registration_access_token ?? ''];
    expect(secretValues.every((v) => v.length > 10)).toBe(true);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the YAML on stdout and only notes, never secret values, on stderr', async () => {
    const io = fakeIo();
    expect(await importCommand(['--from', fixture, '--name', 'grafana'], io)).toBe(0);
    expect(io.stdout()).toContain('kind: OidcClient');
    for (const v of secretValues) expect(io.stdout()).toContain(v); // the Secret the user asked for
    for (const v of secretValues) expect(io.stderr()).not.toContain(v);
    expect(io.stderr()).toContain('Secret grafana-oidc-adopt');
    expect(io.stderr()).toContain('providerRef is OidcProvider/iam (default)');
    expect(io.stderr()).toContain('not part of the spec: client_id, client_secret');
    expect(io.stderr()).toContain(
      'left as the provider has them, not in the spec (add them with --extra-metadata KEY,... or all): reuse_refresh_token, clear_access_tokens_on_refresh, require_auth_time.',
    );
  });

  it('notes what it could not carry: no management, values the spec cannot hold, unknown extras', async () => {
    const file = join(dir, 'unmanaged.json');
    await writeFile(
      file,
      JSON.stringify({
        client_id: 'c',
        client_secret: secretValues[0],
        grant_types: 'authorization_code',
        x: 1,
      }),
    );
    const io = fakeIo();
    expect(await importCommand(['--from', file, '--name', 'x', '--extra-metadata', 'y'], io)).toBe(0);
    expect(io.stderr()).toContain('no RFC 7592 management for this client');
    expect(io.stderr()).toContain('grant_types left as the provider has it');
    expect(io.stderr()).toContain('/spec/grantTypes: must be array');
    expect(io.stderr()).toContain('--extra-metadata names fields the JSON does not set: y.');
    expect(io.stderr()).not.toContain(secretValues[0]);
    expect(io.stdout()).not.toContain('grantTypes');
  });

  it('writes --output files readable by the owner only', async () => {
    const out = join(dir, 'grafana.yaml');
    await writeFile(out, 'old', { mode: 0o644 });
    const io = fakeIo();
    expect(
      await importCommand(['--from', fixture, '--name', 'grafana', '--provider', 'iam', '-o', out], io),
    ).toBe(0);
    expect(io.stdout()).toBe('');
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect(await readFile(out, 'utf8')).toContain('name: grafana-oidc-adopt');
    expect(io.stderr()).not.toContain('(default)');
  });

  it('fails with exit 1 on unreadable or unusable input, without secret values', async () => {
    const missing = fakeIo();
    expect(await importCommand(['--from', join(dir, 'nope.json'), '--name', 'x'], missing)).toBe(1);
    expect(missing.stderr()).toContain('cannot read');
    expect(missing.stderr()).toContain('ENOENT');

    const partial = join(dir, 'partial.json');
    await writeFile(
      partial,
      JSON.stringify({
        client_id: 'c',
        client_secret: secretValues[0],
        registration_access_token: secretValues[1],
      }),
    );
    const io = fakeIo();
    expect(await importCommand(['--from', partial, '--name', 'x'], io)).toBe(1);
    expect(io.stderr()).toMatch(/lacks registration_client_uri/);
    for (const v of secretValues) expect(io.stderr()).not.toContain(v);
    expect(io.stdout()).toBe('');

    const anonymous = join(dir, 'anonymous.json');
    await writeFile(anonymous, JSON.stringify({ client_id: null, client_secret: secretValues[0] }));
    const bad = fakeIo();
    expect(await importCommand(['--from', anonymous, '--name', 'x'], bad)).toBe(1);
    expect(bad.stderr()).toContain('lacks client_id');
  });
});
