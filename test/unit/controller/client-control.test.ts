import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseRefreshInterval, refreshIntervalProblem } from '../../../src/api/refresh-interval.js';
import type { OidcClient, OidcClientStatus } from '../../../src/api/types.generated.js';
import { validateOidcClientSpec } from '../../../src/api/validate.js';
import { checkManifestText } from '../../../src/cli/manifests.js';
import {
  ANNOTATION_CHECK_NOW,
  ANNOTATION_PAUSED,
  deletionPolicyOf,
  isPaused,
  observedConditions,
  pausedStatus,
  pendingCheckNow,
  refreshIntervalOf,
  restrictToObserve,
} from '../../../src/controller/client-control.js';
import {
  type ClientState,
  decide,
  decideDeletion,
  type Observation,
} from '../../../src/controller/client-state.js';
import type { StoredRegistration } from '../../../src/controller/secrets.js';

const reg: StoredRegistration = {
  clientId: 'c1',
  clientSecret: 's',
  registrationAccessToken: 't',
  registrationClientUri: 'https://p/iam/api/client-registration/c1',
};

function cr(
  spec: Partial<OidcClient['spec']> = {},
  annotations?: Record<string, string>,
  generation = 1,
): OidcClient {
  return {
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcClient',
    metadata: { name: 'a', namespace: 'ns', uid: 'u', generation, annotations },
    spec: { providerRef: { name: 'p' }, ...spec },
  } as OidcClient;
}

const ready: OidcClientStatus = {
  observedGeneration: 1,
  conditions: [
    { type: 'Ready', status: 'True', reason: 'Registered', message: 'ok', lastTransitionTime: 't0' },
  ],
};

function obs(over: Partial<Observation> = {}): Observation {
  return {
    cr: cr({ managementPolicy: 'ObserveOnly' }),
    status: ready,
    mgmtName: 'a-oidc-registration',
    mgmt: { metadata: { name: 'a-oidc-registration' } },
    mgmtOwned: true,
    mgmtClaimable: false,
    stored: { kind: 'managed', reg },
    remembered: false,
    namespaceTerminating: false,
    rejectedTokenInUse: false,
    specChanged: false,
    resyncDue: false,
    desired: { client_name: 'a', redirect_uris: ['https://a/cb'] },
    desiredHash: 'h1',
    ...over,
  };
}

const found = (metadata: Record<string, unknown>) =>
  ({ kind: 'found', clientId: 'c1', client: { clientId: 'c1', metadata } }) as Observation['remote'];

describe('refreshInterval', () => {
  it('parses Go durations and "0", refuses other text and out-of-range values', () => {
    expect(parseRefreshInterval('0')).toBe(0);
    expect(parseRefreshInterval('1h30m')).toBe(5_400_000);
    expect(parseRefreshInterval('1.5s')).toBe(1_500);
    expect(parseRefreshInterval('500ms')).toBe(500);
    for (const bad of ['', '10', '1d', '-1m', '1 m', '0s0', 'm'])
      expect(parseRefreshInterval(bad), bad).toBeUndefined();
    expect(refreshIntervalProblem('30s')).toBeUndefined();
    expect(refreshIntervalProblem('168h')).toBeUndefined();
    expect(refreshIntervalProblem('0')).toBeUndefined();
    expect(refreshIntervalProblem('500ms')).toMatch(/between 1s and 168h/);
    expect(refreshIntervalProblem('169h')).toMatch(/between 1s and 168h/);
    expect(refreshIntervalProblem('soon')).toMatch(/not a duration/);
    // The bounds are judged on seconds as doubles, like the CRD's CEL rule: exactly at the edges,
    // without rounding, and beyond what a Go duration can hold.
    expect(refreshIntervalProblem('1000ms')).toBeUndefined();
    expect(refreshIntervalProblem('167h59m60s')).toBeUndefined();
    expect(refreshIntervalProblem('168h1ms')).toMatch(/between 1s and 168h/);
    expect(refreshIntervalProblem('0.9999999999s')).toMatch(/between 1s and 168h/);
    expect(refreshIntervalProblem('9999999h')).toMatch(/between 1s and 168h/);
  });

  it('is checked by validate (the CRD pattern and CEL rule, offline), once per problem', () => {
    expect(validateOidcClientSpec(cr({ refreshInterval: '5m' }).spec)).toEqual([]);
    expect(validateOidcClientSpec(cr({ refreshInterval: '0' }).spec)).toEqual([]);
    const tooLong = validateOidcClientSpec(cr({ refreshInterval: '200h' }).spec);
    expect(tooLong).toEqual([
      {
        path: '/spec/refreshInterval',
        message: 'must be "0" (no periodic drift checks) or between 1s and 168h',
      },
    ]);
    const garbage = validateOidcClientSpec(cr({ refreshInterval: 'weekly' }).spec);
    expect(garbage).toHaveLength(1);
    expect(garbage[0]?.path).toBe('/spec/refreshInterval');
    expect(
      validateOidcClientSpec({ providerRef: { name: 'p' }, managementPolicy: 'Sometimes' })[0]?.path,
    ).toBe('/spec/managementPolicy');
  });

  it('defaults to the operator interval, keeps 0 (never) and raises values below the floor', () => {
    const o = { defaultMs: 600_000, minMs: 60_000 };
    expect(refreshIntervalOf(cr(), o)).toEqual({ ms: 600_000, raised: false });
    expect(refreshIntervalOf(cr({ refreshInterval: '2m' }), o)).toEqual({ ms: 120_000, raised: false });
    expect(refreshIntervalOf(cr({ refreshInterval: '0' }), o)).toEqual({ ms: 0, raised: false });
    expect(refreshIntervalOf(cr({ refreshInterval: '5s' }), o)).toEqual({ ms: 60_000, raised: true });
    // A value the apiserver would have refused falls back to the default rather than breaking.
    expect(refreshIntervalOf(cr({ refreshInterval: 'x' }), o)).toEqual({ ms: 600_000, raised: false });
  });
});

describe('check-now and pause annotations', () => {
  it('a check-now value is pending until the status records it', () => {
    expect(pendingCheckNow(cr(), ready)).toBeUndefined();
    expect(pendingCheckNow(cr({}, { [ANNOTATION_CHECK_NOW]: '' }), ready)).toBeUndefined();
    expect(pendingCheckNow(cr({}, { [ANNOTATION_CHECK_NOW]: 'x' }), ready)).toBe('x');
    expect(
      pendingCheckNow(cr({}, { [ANNOTATION_CHECK_NOW]: 'x' }), { ...ready, checkNowHandled: 'x' }),
    ).toBeUndefined();
    expect(pendingCheckNow(cr({}, { [ANNOTATION_CHECK_NOW]: 'y' }), { ...ready, checkNowHandled: 'x' })).toBe(
      'y',
    );
  });

  it('pauses only for "true"', () => {
    expect(isPaused(cr({}, { [ANNOTATION_PAUSED]: 'true' }))).toBe(true);
    expect(isPaused(cr({}, { [ANNOTATION_PAUSED]: 'false' }))).toBe(false);
    expect(isPaused(cr())).toBe(false);
  });

  it('paused: Ready untouched, Synced=False ReconcilePaused, and a second pass (even after a spec change) changes nothing', () => {
    const once = pausedStatus(ready, cr({}, undefined, 1), 't1');
    expect(once.conditions?.find((c) => c.type === 'Ready')).toEqual(ready.conditions?.[0]);
    expect(once.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'ReconcilePaused',
      observedGeneration: 1,
    });
    expect(once.observedGeneration).toBe(1);
    const twice = pausedStatus(once, cr({}, undefined, 2), 't2');
    expect(twice).toEqual(once);
  });
});

describe('managementPolicy ObserveOnly', () => {
  it('turns every state that would POST, PUT or DELETE into one that reports', () => {
    const restricted = (o: Observation) => restrictToObserve(decide(o), o).kind;
    const empty = { mgmt: undefined, mgmtOwned: false, stored: { kind: 'empty' as const } };
    expect(restricted(obs(empty))).toBe('NothingToObserve');
    expect(
      restricted(
        obs({
          ...empty,
          cr: cr({ managementPolicy: 'ObserveOnly' }, { 'oidc.dcr-operator.dev/registration-attempt': 'x' }),
        }),
      ),
    ).toBe('NothingToObserve');
    expect(restricted(obs({ remote: { kind: 'gone', clientId: 'c1', why: '404' } }))).toBe('ObservedGone');
    expect(restricted(obs({ rotation: { kind: 'Reregister', value: 'now' } }))).toBe('ObserveOnlyRefused');
    expect(restricted(obs({ rotation: { kind: 'Requested', value: 'now' } }))).toBe('ObserveOnlyRefused');
    expect(restricted(obs({ stored: { kind: 'managed', reg, previous: { ...reg, clientId: 'c0' } } }))).toBe(
      'ObserveOnlyRefused',
    );
    // What only reads or writes local state stays as decided.
    expect(
      restricted(
        obs({
          ...empty,
          cr: cr({ managementPolicy: 'ObserveOnly', adoptFrom: { secretRef: { name: 's' } } }),
        }),
      ),
    ).toBe('NeedsAdoption');
    expect(restricted(obs({ resyncDue: true }))).toBe('CheckDue');
    expect(restricted(obs({ remote: { kind: 'tokenRejected', clientId: 'c1', probe: 'valid' } }))).toBe(
      'TokenRejected',
    );
  });

  it('reports drift instead of updating; client_name defaults count only when spec.clientName is set', () => {
    const drifted = obs({ remote: found({ client_name: 'other', redirect_uris: ['https://evil/cb'] }) });
    expect(decide(drifted).kind).toBe('NeedsUpdate');
    expect(restrictToObserve(decide(drifted), drifted)).toEqual({
      kind: 'Observed',
      drift: ['redirect_uris'],
    });
    const named = obs({
      cr: cr({ managementPolicy: 'ObserveOnly', clientName: 'a' }),
      remote: found({ client_name: 'other', redirect_uris: ['https://a/cb'] }),
    });
    expect(restrictToObserve(decide(named), named)).toEqual({ kind: 'Observed', drift: ['client_name'] });
    const same = obs({ remote: found({ client_name: 'a', redirect_uris: ['https://a/cb'] }) });
    expect(restrictToObserve(decide(same), same)).toEqual({ kind: 'Observed', drift: [] });
    expect(restrictToObserve(decide(obs()), obs())).toEqual({ kind: 'Observed', drift: undefined });
  });

  it('leaves Full clients alone', () => {
    const full = obs({ cr: cr(), remote: found({ client_name: 'a', redirect_uris: ['https://evil/cb'] }) });
    const state: ClientState = decide(full);
    expect(restrictToObserve(state, full)).toBe(state);
    const empty = obs({ cr: cr(), mgmt: undefined, mgmtOwned: false, stored: { kind: 'empty' } });
    expect(restrictToObserve(decide(empty), empty).kind).toBe('NeedsRegistration');
  });

  it('conditions: Managed=False always, Synced=False Drifted kept until a check finds no drift', () => {
    const drift = observedConditions(ready, ['redirect_uris']);
    expect(drift.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      'Managed=False/ObserveOnly',
      'Synced=False/Drifted',
    ]);
    const withDrift: OidcClientStatus = {
      ...ready,
      conditions: [
        ...(ready.conditions ?? []),
        {
          type: 'Synced',
          status: 'False',
          reason: 'Drifted',
          message: 'differs in redirect_uris',
          lastTransitionTime: 't',
        },
      ],
    };
    expect(observedConditions(withDrift, undefined).find((c) => c.type === 'Synced')?.message).toBe(
      'differs in redirect_uris',
    );
    expect(observedConditions(withDrift, []).some((c) => c.type === 'Synced')).toBe(false);
    const pausedBefore: OidcClientStatus = {
      ...ready,
      conditions: [
        { type: 'Synced', status: 'False', reason: 'ReconcilePaused', message: '', lastTransitionTime: 't' },
      ],
    };
    expect(observedConditions(pausedBefore, undefined).some((c) => c.type === 'Synced')).toBe(false);
  });

  it('never deletes at the provider: deletion orphans the client', () => {
    const observer = cr({ managementPolicy: 'ObserveOnly', deletionPolicy: 'Delete' });
    expect(deletionPolicyOf(observer)).toBe('Orphan');
    expect(deletionPolicyOf(cr())).toBe('Delete');
    expect(deletionPolicyOf(cr({ deletionPolicy: 'Orphan' }))).toBe('Orphan');
    expect(decideDeletion(observer, { kind: 'managed', reg }, undefined, deletionPolicyOf(observer))).toEqual(
      {
        kind: 'Orphan',
        clientId: 'c1',
      },
    );
  });
});

describe('examples/oidcclient-observe-only.yaml', () => {
  it('passes validate and uses the control fields', async () => {
    const text = await readFile(
      new URL('../../../examples/oidcclient-observe-only.yaml', import.meta.url),
      'utf8',
    );
    const report = checkManifestText(text);
    expect(report.issues).toEqual([]);
    expect(report.validated).toBe(1);
    expect(text).toContain('managementPolicy: ObserveOnly');
    expect(text).toContain('refreshInterval: 30m');
  });
});
