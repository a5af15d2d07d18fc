import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DURATION_PATTERN } from '../../../src/api/schema.js';
import { validateOidcClientSpec } from '../../../src/api/validate.js';
import { checkManifestText } from '../../../src/cli/manifests.js';
import {
  DEFAULT_OVERLAP_MS,
  deleteRetryDelay,
  dueRotation,
  expiryRotationAt,
  overlapFor,
  parseDuration,
  previousPhase,
  type RotationInput,
  rotationPolicy,
  rotationStatus,
} from '../../../src/controller/rotation.js';

const H = 3_600_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function input(over: Partial<RotationInput> = {}): RotationInput {
  return {
    policy: { overlapMs: DEFAULT_OVERLAP_MS },
    request: {},
    handled: {},
    issuedAt: T0,
    now: T0 + H,
    ...over,
  };
}

describe('durations', () => {
  it('reads Go durations and days, and nothing else', () => {
    expect(parseDuration('2160h')).toBe(2160 * H);
    expect(parseDuration('90d')).toBe(90 * 24 * H);
    expect(parseDuration('1h30m')).toBe(1.5 * H);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('0')).toBe(0);
    for (const bad of ['', '10', '1.5h', '-1h', '10 m', 'h', '1w', '99999999999999999999d'])
      expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('the CRD pattern accepts exactly the syntax the parser reads', () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const ok of ['2160h', '90d', '1h30m', '0s', '0', '5s']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['', '10', '1.5h', '-1h', '10 m', '1w']) expect(re.test(bad), bad).toBe(false);
  });

  it('refuses a schedule not longer than the overlap (two clients live all the time)', () => {
    const spec = (rotation: Record<string, string>) => ({
      providerRef: { name: 'iam' },
      redirectUris: ['https://a.example.org/cb'],
      rotation,
    });
    expect(validateOidcClientSpec(spec({ every: '2160h', overlap: '10m' }))).toEqual([]);
    expect(validateOidcClientSpec(spec({ every: '5s', overlap: '0s' }))).toEqual([]);
    expect(validateOidcClientSpec(spec({ every: '10m', overlap: '10m' }))).toEqual([
      { path: '/spec/rotation/every', message: 'must be longer than the overlap (10m)' },
    ]);
    // The default overlap (10m) counts too.
    expect(validateOidcClientSpec(spec({ every: '5m' }))[0]?.message).toMatch(/longer than the overlap/);
    expect(validateOidcClientSpec(spec({ every: '2 days' })).map((i) => i.path)).toEqual([
      '/spec/rotation/every',
    ]);
  });

  it("the CRD rule's twin reads days, repeated units and counts too large for an integer, as the apiserver does", () => {
    const spec = (rotation: Record<string, string>) => ({ providerRef: { name: 'iam' }, rotation });
    const refused = (rotation: Record<string, string>) =>
      validateOidcClientSpec(spec(rotation)).map((i) => `${i.path}: ${i.message}`);
    // What kube-apiserver 1.37 answered for each (a server dry run of the generated CRD).
    expect(refused({ every: '1d', overlap: '24h' })).toEqual([
      '/spec/rotation/every: must be longer than the overlap (24h)',
    ]);
    expect(refused({ every: '1d', overlap: '23h59m59s' })).toEqual([]);
    expect(refused({ every: '0' })).toEqual([
      '/spec/rotation/every: must be longer than the overlap (10m, the default)',
    ]);
    expect(refused({ every: '1s', overlap: '0' })).toEqual([]);
    expect(refused({ every: '1h1h', overlap: '2h' })).toEqual([
      '/spec/rotation/every: must be longer than the overlap (2h)',
    ]);
    expect(refused({ every: '1h1h1s', overlap: '2h' })).toEqual([]);
    expect(refused({ every: '1m', overlap: '60s' })).toHaveLength(1);
    expect(refused({ every: '99999999999999999999999999999d', overlap: '1h' })).toEqual([]);
    expect(refused({ every: '1h', overlap: '99999999999999999999999999999d' })).toHaveLength(1);
    // A value the pattern refuses is reported once, by the pattern.
    expect(refused({ every: '1h', overlap: '2 days' }).map((i) => i.split(':')[0])).toEqual([
      '/spec/rotation/overlap',
    ]);
  });

  it('examples/oidcclient-rotation.yaml passes validate', async () => {
    const text = await readFile(
      resolve(import.meta.dirname, '../../../examples/oidcclient-rotation.yaml'),
      'utf8',
    );
    const report = checkManifestText(text);
    expect(report.issues).toEqual([]);
    expect(report.validated).toBe(1);
    expect(text).toContain('every: 90d');
  });

  it('turns the spec into a policy with a 10 minute default overlap', () => {
    expect(rotationPolicy({ providerRef: { name: 'x' } })).toEqual({ overlapMs: DEFAULT_OVERLAP_MS });
    expect(rotationPolicy({ providerRef: { name: 'x' }, rotation: { every: '90d', overlap: '0s' } })).toEqual(
      {
        everyMs: 90 * 24 * H,
        overlapMs: 0,
      },
    );
  });
});

describe('when a rotation is due', () => {
  it('a new annotation value is a request; a value already carried out is not', () => {
    expect(dueRotation(input({ request: { rotate: 'v1' } })).trigger).toEqual({
      kind: 'Requested',
      value: 'v1',
    });
    expect(
      dueRotation(input({ request: { rotate: 'v1' }, handled: { rotate: 'v1' } })).trigger,
    ).toBeUndefined();
    expect(
      dueRotation(input({ request: { reregister: 'r1' }, handled: { reregister: 'r0' } })).trigger,
    ).toEqual({ kind: 'Reregister', value: 'r1' });
    // Both new: the urgent one (no overlap) wins, and one rotation answers both.
    expect(dueRotation(input({ request: { rotate: 'v2', reregister: 'r2' } })).trigger?.kind).toBe(
      'Reregister',
    );
    expect(dueRotation(input()).trigger).toBeUndefined();
  });

  it('on schedule: due once `every` has passed since the client was registered', () => {
    const policy = { everyMs: 2 * H, overlapMs: DEFAULT_OVERLAP_MS };
    expect(dueRotation(input({ policy, every: '2h' }))).toEqual({ nextAt: T0 + 2 * H });
    expect(dueRotation(input({ policy, every: '2h', now: T0 + 2 * H }))).toEqual({
      trigger: { kind: 'Schedule', every: '2h' },
      nextAt: T0 + 2 * H,
    });
  });

  it('before client_secret_expires_at: max(overlap, 10 % of the lifetime) ahead, never before half-life', () => {
    // 30 days, 10 min overlap: 3 days before.
    const day = 24 * H;
    expect(expiryRotationAt(T0, T0 + 30 * day, DEFAULT_OVERLAP_MS)).toBe(T0 + 27 * day);
    // 1 hour lifetime, 10 min overlap: the overlap is the larger margin.
    expect(expiryRotationAt(T0, T0 + H, DEFAULT_OVERLAP_MS)).toBe(T0 + H - DEFAULT_OVERLAP_MS);
    // A lifetime shorter than the margin does not rotate at once (and again, and again).
    expect(expiryRotationAt(T0, T0 + 60_000, DEFAULT_OVERLAP_MS)).toBe(T0 + 30_000);
    const expiresAt = T0 + 30 * day;
    expect(dueRotation(input({ expiresAt, now: T0 + 26 * day }))).toEqual({ nextAt: T0 + 27 * day });
    expect(dueRotation(input({ expiresAt, now: T0 + 27 * day })).trigger).toEqual({
      kind: 'Expiry',
      expiresAt,
    });
    // The earlier of schedule and expiry is the next time.
    const policy = { everyMs: 10 * day, overlapMs: DEFAULT_OVERLAP_MS };
    expect(dueRotation(input({ policy, expiresAt })).nextAt).toBe(T0 + 10 * day);
  });
});

describe('the previous client', () => {
  it('is kept for the overlap after the switch; reregister keeps it for none', () => {
    const policy = { overlapMs: 5_000 };
    expect(overlapFor('Requested', policy)).toBe(5_000);
    expect(overlapFor('Schedule', policy)).toBe(5_000);
    expect(overlapFor('Expiry', policy)).toBe(5_000);
    expect(overlapFor('Reregister', policy)).toBe(0);
    expect(overlapFor(undefined, policy)).toBe(5_000);
  });

  it('is switched away from first, then waited for, then deleted (after a failure: after the retry time)', () => {
    expect(previousPhase({ now: T0 })).toEqual({ kind: 'switch' });
    expect(previousPhase({ deletionTime: T0 + 1000, now: T0 })).toEqual({ kind: 'wait', at: T0 + 1000 });
    expect(previousPhase({ deletionTime: T0, now: T0 })).toEqual({ kind: 'delete' });
    expect(previousPhase({ deletionTime: T0, retryAt: T0 + 4000, now: T0 + 1 })).toEqual({
      kind: 'wait',
      at: T0 + 4000,
    });
    expect(previousPhase({ deletionTime: T0, retryAt: T0 + 4000, now: T0 + 4000 })).toEqual({
      kind: 'delete',
    });
  });

  it('failed deletes back off exponentially up to 5 minutes', () => {
    expect([1, 2, 3, 4].map(deleteRetryDelay)).toEqual([2_000, 4_000, 8_000, 16_000]);
    expect(deleteRetryDelay(30)).toBe(300_000);
  });

  it('status.rotation shows what is known and nothing else', () => {
    expect(rotationStatus({})).toBeUndefined();
    expect(
      rotationStatus({
        previous: { clientId: 'old', deletionTime: T0 },
        lastRotationTime: '2025-12-31T23:59:00.000Z',
        nextAt: T0 + H,
        lastRequest: 'v1',
      }),
    ).toEqual({
      previousClientId: 'old',
      previousDeletionTime: '2026-01-01T00:00:00.000Z',
      lastRotationTime: '2025-12-31T23:59:00.000Z',
      nextRotationTime: '2026-01-01T01:00:00.000Z',
      lastRequest: 'v1',
    });
  });
});
