import { describe, expect, it } from 'vitest';
import type { OidcClient } from '../../../src/api/types.generated.js';
import { decide, decideDeletion, type Observation } from '../../../src/controller/client-state.js';
import type { StoredRegistration } from '../../../src/controller/secrets.js';
import { judgeWrite } from '../../../src/registration/metadata.js';

const reg: StoredRegistration = {
  clientId: 'c1',
  clientSecret: 's',
  registrationAccessToken: 't',
  registrationClientUri: 'https://p/iam/api/client-registration/c1',
};
const old: StoredRegistration = { ...reg, clientId: 'c0', registrationClientUri: 'https://p/x/c0' };

function cr(spec: Partial<OidcClient['spec']> = {}, generation = 1): OidcClient {
  return {
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcClient',
    metadata: { name: 'a', namespace: 'ns', uid: 'u', generation },
    spec: { providerRef: { name: 'p' }, ...spec },
  } as OidcClient;
}

const readyStatus = {
  observedGeneration: 1,
  conditions: [
    { type: 'Ready', status: 'True' as const, reason: 'Registered', message: '', lastTransitionTime: '' },
  ],
};

function obs(over: Partial<Observation> = {}): Observation {
  return {
    cr: cr(),
    status: readyStatus,
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

describe('decide', () => {
  it('names one state for each situation', () => {
    expect(decide(obs({ specIssues: 'bad' })).kind).toBe('Invalid');
    expect(decide(obs({ mgmtOwned: false })).kind).toBe('SecretConflict');
    expect(
      decide(
        obs({
          mgmtOwned: false,
          mgmtClaimable: true,
          stored: { kind: 'empty' },
          cr: cr({ adoptFrom: { secretRef: { name: 'a-oidc-registration' } } }),
        }),
      ).kind,
    ).toBe('NeedsAdoption');
    expect(decide(obs({ mgmt: undefined, mgmtOwned: false, stored: { kind: 'empty' } })).kind).toBe(
      'NeedsRegistration',
    );
    expect(decide(obs({ mgmt: undefined, stored: { kind: 'empty' }, remembered: true })).kind).toBe(
      'ManagementSecretLost',
    );
    expect(decide(obs({ stored: { kind: 'empty', attempt: '2026-01-01T00:00:00Z' } }))).toEqual({
      kind: 'RegistrationPending',
      attempt: '2026-01-01T00:00:00Z',
    });
    // A first registration's marker is on the OidcClient; it counts while no management Secret exists.
    const marked = cr();
    marked.metadata.annotations = { 'oidc.dcr-operator.dev/registration-attempt': '2026-01-02T00:00:00Z' };
    expect(decide(obs({ cr: marked, mgmt: undefined, stored: { kind: 'empty' } }))).toEqual({
      kind: 'RegistrationPending',
      attempt: '2026-01-02T00:00:00Z',
    });
    // Once a Secret holds a registration (or its own marker state), the OidcClient's marker is stale.
    expect(decide(obs({ cr: marked })).kind).toBe('UpToDate');
    expect(decide(obs({ cr: marked, stored: { kind: 'empty' } })).kind).toBe('NeedsRegistration');
    expect(decide(obs({ rotation: { kind: 'Reregister', value: 'r2' } }))).toEqual({
      kind: 'RotationDue',
      trigger: { kind: 'Reregister', value: 'r2' },
    });
    expect(decide(obs({ stored: { kind: 'managed', reg, previous: old } }))).toEqual({
      kind: 'PreviousClientPending',
      previous: old,
    });
    // A rotation waits while the previous client of the last one is still kept: never three clients.
    expect(
      decide(
        obs({ stored: { kind: 'managed', reg, previous: old }, rotation: { kind: 'Requested', value: 'x' } }),
      ),
    ).toEqual({ kind: 'PreviousClientPending', previous: old });
    expect(decide(obs({ resyncDue: true })).kind).toBe('CheckDue');
    expect(decide(obs({ specChanged: true })).kind).toBe('CheckDue');
    expect(decide(obs()).kind).toBe('UpToDate');
  });

  it('waits for a new generation after the provider refused this spec', () => {
    const status = {
      observedGeneration: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'False' as const,
          reason: 'InvalidMetadata',
          message: 'm',
          lastTransitionTime: '',
        },
        {
          type: 'Stalled',
          status: 'True' as const,
          reason: 'InvalidMetadata',
          message: 'm',
          lastTransitionTime: '',
        },
      ],
    };
    expect(decide(obs({ status })).kind).toBe('AwaitingSpecChange');
    expect(decide(obs({ status, cr: cr({}, 2) })).kind).not.toBe('AwaitingSpecChange');
  });

  it('moves a renamed management Secret before registering anything', () => {
    const state = decide(
      obs({
        mgmt: undefined,
        stored: { kind: 'empty' },
        former: { name: 'old', secret: {}, stored: { kind: 'managed', reg } },
      }),
    );
    expect(state).toEqual({ kind: 'ManagementSecretRenamed', from: 'old' });
  });

  it('keeps a re-registration with a failed POST pending, never adopting or dropping the old client', () => {
    const state = decide(
      obs({
        stored: { kind: 'empty', previous: old },
        cr: cr({ adoptFrom: { secretRef: { name: 'x' } } }),
      }),
    );
    expect(state.kind).toBe('NeedsRegistration');
  });

  it('reads the provider answer: gone, token rejected, drifted or up to date', () => {
    const client = { clientId: 'c1', metadata: { client_name: 'a', redirect_uris: ['https://a/cb'] } };
    expect(decide(obs({ remote: { kind: 'found', clientId: 'c1', client } })).kind).toBe('UpToDate');
    const drifted = { clientId: 'c1', metadata: { client_name: 'a', redirect_uris: ['https://evil/cb'] } };
    expect(decide(obs({ remote: { kind: 'found', clientId: 'c1', client: drifted } }))).toEqual({
      kind: 'NeedsUpdate',
      fields: ['redirect_uris'],
    });
    expect(decide(obs({ remote: { kind: 'gone', clientId: 'c1', why: '404' } })).kind).toBe('Gone');
    expect(decide(obs({ remote: { kind: 'tokenRejected', clientId: 'c1', probe: 'valid' } }))).toEqual({
      kind: 'TokenRejected',
      probe: 'valid',
    });
    // An answer about another client (before a re-registration) is not about this one.
    expect(decide(obs({ resyncDue: true, remote: { kind: 'gone', clientId: 'c0', why: '404' } })).kind).toBe(
      'CheckDue',
    );
  });

  it('is up to date with values the provider normalised or extended by itself, not with others', () => {
    const desired = { client_name: 'a', redirect_uris: ['https://A.example'], scope: 'email profile' };
    const answer = { client_name: 'a', redirect_uris: ['https://a.example/'], scope: 'profile openid email' };
    const found = (metadata: Record<string, unknown>) =>
      ({ kind: 'found', clientId: 'c1', client: { clientId: 'c1', metadata } }) as const;
    // Without what the provider's answer to our write taught, an extended scope is drift.
    expect(decide(obs({ desired, remote: found(answer) }))).toEqual({
      kind: 'NeedsUpdate',
      fields: ['scope'],
    });
    const providerForms = judgeWrite(desired, answer).forms;
    expect(decide(obs({ desired, providerForms, remote: found(answer) })).kind).toBe('UpToDate');
    expect(
      decide(
        obs({ desired, providerForms, remote: found({ ...answer, scope: 'openid email profile admin' }) }),
      ),
    ).toEqual({ kind: 'NeedsUpdate', fields: ['scope'] });
  });

  it('never registers again for an unmanaged client; a spec change is reported', () => {
    const stored = { kind: 'unmanaged' as const, reg: { clientId: 'u1' }, metadataHash: 'h1' };
    expect(decide(obs({ stored, resyncDue: true, specChanged: true }))).toEqual({
      kind: 'Unmanaged',
      specDiffers: false,
    });
    expect(decide(obs({ stored, desiredHash: 'h2' }))).toEqual({ kind: 'Unmanaged', specDiffers: true });
  });

  it('stays stalled on a rejected token until the spec changes or a check is due', () => {
    expect(decide(obs({ rejectedTokenInUse: true })).kind).toBe('TokenRejected');
    expect(decide(obs({ rejectedTokenInUse: true, resyncDue: true })).kind).toBe('CheckDue');
  });
});

describe('decideDeletion', () => {
  it('deletes the client and a pending previous one; orphans; leaves an unmanaged one', () => {
    expect(decideDeletion(cr(), { kind: 'managed', reg, previous: old }, undefined)).toEqual({
      kind: 'DeleteAtProvider',
      regs: [reg, old],
      unmanaged: undefined,
    });
    expect(decideDeletion(cr(), { kind: 'empty', previous: old }, undefined)).toMatchObject({
      kind: 'DeleteAtProvider',
      regs: [old],
    });
    expect(decideDeletion(cr({ deletionPolicy: 'Orphan' }), { kind: 'managed', reg }, undefined)).toEqual({
      kind: 'Orphan',
      clientId: 'c1',
    });
    expect(decideDeletion(cr(), { kind: 'unmanaged', reg: { clientId: 'u1' } }, undefined)).toEqual({
      kind: 'UnmanagedStays',
      clientId: 'u1',
    });
    expect(decideDeletion(cr(), { kind: 'empty' }, { kind: 'managed', reg })).toMatchObject({
      kind: 'DeleteAtProvider',
    });
    const lost = { ...cr(), status: { clientId: 'c9' } } as OidcClient;
    expect(decideDeletion(lost, { kind: 'empty' }, undefined)).toEqual({ kind: 'TokenLost', clientId: 'c9' });
    expect(decideDeletion(cr(), { kind: 'empty' }, undefined)).toEqual({ kind: 'NothingRegistered' });
  });
});
