import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/io.js';
import {
  type FileResult,
  formatJson,
  formatText,
  validateCommand,
} from '../../../src/cli/validate-command.js';
import { fakeIo } from './fake-io.js';

const GOOD = `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: web
spec:
  providerRef:
    name: iam
`;
const BAD = GOOD.replace('    name: iam\n', '    name: iam\n  deletionPolicy: Keep\n');

const results: FileResult[] = [
  {
    file: 'a.yaml',
    report: {
      documents: 2,
      validated: 1,
      skipped: 1,
      issues: [
        { document: 1, kind: 'OidcClient', name: 'web', path: '/spec/x', message: 'unknown field', line: 9 },
      ],
    },
  },
  {
    file: 'b.yaml',
    report: {
      documents: 1,
      validated: 0,
      skipped: 0,
      issues: [{ document: 0, path: '', message: 'syntax error: x' }],
    },
  },
];

describe('formatText / formatJson', () => {
  it('prints file:doc: Kind/name: path: message and a summary', () => {
    expect(formatText(results)).toBe(
      'a.yaml:1: OidcClient/web: /spec/x: unknown field\n' +
        'b.yaml:0: syntax error: x\n' +
        '2 files, 3 documents: 1 validated, 1 skipped, 2 issues\n',
    );
    expect(formatText(results, { quiet: true })).not.toContain('documents');
    expect(formatText([], { quiet: true })).toBe('');
    expect(formatText([{ file: 'c', report: { documents: 1, validated: 1, skipped: 0, issues: [] } }])).toBe(
      '1 file, 1 document: 1 validated, 0 skipped, no issues\n',
    );
  });

  it('prints JSON with totals and flat issues', () => {
    expect(JSON.parse(formatJson(results))).toEqual({
      files: 2,
      documents: 3,
      validated: 1,
      skipped: 1,
      issues: [
        {
          file: 'a.yaml',
          document: 1,
          kind: 'OidcClient',
          name: 'web',
          path: '/spec/x',
          message: 'unknown field',
          line: 9,
        },
        { file: 'b.yaml', document: 0, path: '', message: 'syntax error: x' },
      ],
    });
  });
});

describe('validateCommand', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'validate-cmd-'));
    await mkdir(join(dir, 'apps', 'web'), { recursive: true });
    await mkdir(join(dir, '.git'), { recursive: true });
    await writeFile(join(dir, 'apps', 'web', 'client.yaml'), GOOD);
    await writeFile(join(dir, 'apps', 'provider.yml'), GOOD.replace('OidcClient', 'OidcProvider'));
    await writeFile(join(dir, 'apps', 'README.md'), BAD);
    await writeFile(join(dir, '.git', 'ignored.yaml'), BAD);
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ apiVersion: 'oidc.dcr-operator.dev/v1alpha1' }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('walks directories for .yaml/.yml/.json only and exits 1 on issues', async () => {
    const io = fakeIo();
    expect(await validateCommand([join(dir, 'apps')], io)).toBe(1);
    const lines = io.stdout().trimEnd().split('\n');
    expect(lines).toEqual([
      `${join(dir, 'apps', 'provider.yml')}:0: OidcProvider/web: /spec/issuerUrl: is required`,
      `${join(dir, 'apps', 'provider.yml')}:0: OidcProvider/web: /spec/providerRef: unknown field`,
      '2 files, 2 documents: 2 validated, 0 skipped, 2 issues',
    ]);
  });

  it('exits 0 on good files, reads an explicit file whatever its extension, and skips .git', async () => {
    const io = fakeIo();
    expect(await validateCommand(['--quiet', join(dir, 'apps', 'web')], io)).toBe(0);
    expect(io.stdout()).toBe('');
    const md = fakeIo();
    expect(await validateCommand([join(dir, 'apps', 'README.md')], md)).toBe(1);
    expect(md.stdout()).toContain(
      'README.md:0: OidcClient/web: /spec/deletionPolicy: must be one of: Delete, Orphan',
    );
    const all = fakeIo();
    await validateCommand(['--format', 'json', dir], all);
    const report = JSON.parse(all.stdout()) as { files: number; issues: { file: string; path: string }[] };
    expect(report.files).toBe(3);
    expect(report.issues.map((i) => i.path)).toEqual(['/spec/issuerUrl', '/spec/providerRef', '/kind']);
    expect(report.issues[2]?.file).toBe(join(dir, 'bad.json'));
  });

  it('raises usage errors for bad arguments', async () => {
    await expect(validateCommand([], fakeIo())).rejects.toThrow(UsageError);
    await expect(validateCommand(['--format', 'xml', dir], fakeIo())).rejects.toThrow(/--format/);
    await expect(validateCommand(['--nope', dir], fakeIo())).rejects.toThrow(UsageError);
    await expect(validateCommand([join(dir, 'missing.yaml')], fakeIo())).rejects.toThrow(
      /no such file or directory/,
    );
    const io = fakeIo();
    expect(await validateCommand(['--help'], io)).toBe(0);
    expect(io.stdout()).toContain('Usage: oidc-client-operator validate');
  });
});

describe('validate: control fields (refreshInterval, managementPolicy)', () => {
  it('accepts them and prints the CRD rule message for out-of-range values', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'validate-control-'));
    try {
      const control = (lines: string) => GOOD.replace('    name: iam\n', `    name: iam\n${lines}`);
      await writeFile(
        join(tmp, 'ok.yaml'),
        control('  refreshInterval: 90s\n  managementPolicy: ObserveOnly\n'),
      );
      const ok = fakeIo();
      expect(await validateCommand(['--quiet', join(tmp, 'ok.yaml')], ok)).toBe(0);
      await writeFile(
        join(tmp, 'bad.yaml'),
        control('  refreshInterval: 200h\n  managementPolicy: Mostly\n'),
      );
      const bad = fakeIo();
      expect(await validateCommand(['--quiet', join(tmp, 'bad.yaml')], bad)).toBe(1);
      expect(bad.stdout()).toContain(
        '/spec/refreshInterval: must be "0" (no periodic drift checks) or between 1s and 168h',
      );
      expect(bad.stdout()).toContain('/spec/managementPolicy: must be one of: Full, ObserveOnly');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
