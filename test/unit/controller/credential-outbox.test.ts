// The compare-and-swap rules of the outbox against an in-memory Secret with resourceVersions
// (the e2e tests cover the same against the real API server under faults).
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { OidcClient } from '../../../src/api/types.generated.js';
import {
  CredentialOutbox,
  judge,
  RegistrationConflictError,
  type SecretWriter,
  WritePendingError,
  type WriteRequest,
} from '../../../src/controller/credential-outbox.js';
import { ANNOTATION_ATTEMPT } from '../../../src/controller/names.js';
import { managementSecretData, type StoredRegistration } from '../../../src/controller/secrets.js';
import { KubeApiError, type KubeRest } from '../../../src/kube/rest.js';

const cr = { metadata: { name: 'app', namespace: 'ns', uid: 'u1' } } as OidcClient;
const reg = (token: string, clientId = 'c1'): StoredRegistration => ({
  clientId,
  clientSecret: 's',
  registrationAccessToken: token,
  registrationClientUri: `https://idp/reg/${clientId}`,
});
/** The outbox request that stores `reg(token, clientId)` in app-reg, based on `base`. */
const writeOf = (
  token: string,
  clientId: string,
  base: V1Secret | undefined,
  onConflict?: () => Promise<void>,
): WriteRequest => ({
  cr,
  name: 'app-reg',
  reg: reg(token, clientId),
  data: managementSecretData(reg(token, clientId)),
  annotations: {},
  base,
  ...(onConflict ? { onConflict } : {}),
});

/** One Secret with optimistic concurrency, and a switch that makes the "API server" fail. */
class FakeSecret {
  rv = 1;
  secret: V1Secret | undefined;
  down = false;
  /** Writes that are applied but whose response is lost (a client-side timeout). */
  lostResponses = 0;
  writes = 0;

  constructor(data: Record<string, string>, annotations: Record<string, string> = {}) {
    this.secret = this.make(data, annotations);
  }

  /** Whose Secret it is: the OidcClient's (uid u1) unless someone else took the name. */
  ownerUid = 'u1';

  make(data: Record<string, string>, annotations: Record<string, string>): V1Secret {
    return {
      metadata: {
        name: 'app-reg',
        namespace: 'ns',
        resourceVersion: String(this.rv),
        annotations,
        ownerReferences: [
          { apiVersion: 'v1', kind: 'OidcClient', name: 'app', uid: this.ownerUid, controller: true },
        ],
      },
      data,
    };
  }

  /** Someone else writes. */
  set(data: Record<string, string>, annotations: Record<string, string> = {}): void {
    this.rv++;
    this.secret = this.make(data, annotations);
  }

  rest = {
    get: async () => {
      if (this.down) throw new KubeApiError(503, 'ServiceUnavailable', 'down', 'GET', '/');
      if (!this.secret) throw new KubeApiError(404, 'NotFound', 'gone', 'GET', '/');
      return structuredClone(this.secret);
    },
  } as unknown as KubeRest;

  writer: SecretWriter = {
    replace: async (_rest, _cr, current, data, annotations) => {
      if (this.down) throw new KubeApiError(503, 'ServiceUnavailable', 'down', 'PUT', '/');
      if (!this.secret) throw new KubeApiError(404, 'NotFound', 'gone', 'PUT', '/');
      if (current.metadata?.resourceVersion !== String(this.rv))
        throw new KubeApiError(409, 'Conflict', 'changed', 'PUT', '/');
      this.writes++;
      this.set(data, annotations);
      if (this.lostResponses > 0) {
        this.lostResponses--;
        throw new Error('The operation was aborted');
      }
      return this.snapshot();
    },
    create: async (_rest, _cr, _name, data, annotations) => {
      if (this.down) throw new KubeApiError(503, 'ServiceUnavailable', 'down', 'POST', '/');
      if (this.secret) throw new KubeApiError(409, 'AlreadyExists', 'exists', 'POST', '/');
      this.writes++;
      this.set(data, annotations);
      return this.snapshot();
    },
  };

  snapshot(): V1Secret {
    if (!this.secret) throw new Error('no secret');
    return structuredClone(this.secret);
  }

  token(): string | undefined {
    const v = this.secret?.data?.registration_access_token;
    return v && Buffer.from(v, 'base64').toString();
  }
}

describe('judge', () => {
  it('applies a rotated token only over the token it was rotated from', () => {
    const s = new FakeSecret(managementSecretData(reg('t0'))).secret;
    expect(judge(s, managementSecretData(reg('t1')), {}, { kind: 'update', token: 't0' })).toBe('apply');
    expect(judge(s, managementSecretData(reg('t1')), {}, { kind: 'update', token: 'tX' })).toBe('lost');
    expect(judge(s, managementSecretData(reg('t0')), {}, { kind: 'update', token: 'tX' })).toBe('stored');
    expect(judge(undefined, managementSecretData(reg('t1')), {}, { kind: 'update', token: 't0' })).toBe(
      'missing',
    );
  });

  it('is stored only when data and annotations are what the write would leave', () => {
    const rejected = new FakeSecret(managementSecretData(reg('t0')), {
      'oidc.dcr-operator.dev/rejected-token-sha256': 'fp',
      other: 'kept',
    }).secret;
    const state = { 'oidc.dcr-operator.dev/state': 'registered' };
    // Same token, but the write clears the rejected-token mark: not yet stored.
    expect(judge(rejected, managementSecretData(reg('t0')), state, { kind: 'update', token: 't0' })).toBe(
      'apply',
    );
    const clean = new FakeSecret(managementSecretData(reg('t0')), { ...state, other: 'kept' }).secret;
    expect(judge(clean, managementSecretData(reg('t0')), state, { kind: 'update', token: 't0' })).toBe(
      'stored',
    );
    // Dropping the previous registration's keys is a change too.
    const withPrevious = new FakeSecret({ ...managementSecretData(reg('t0')), previous_client_id: 'eA==' })
      .secret;
    expect(judge(withPrevious, managementSecretData(reg('t0')), {}, { kind: 'update', token: 't0' })).toBe(
      'apply',
    );
  });

  it('stores a new registration only under its own pending marker', () => {
    const marked = new FakeSecret({}, { [ANNOTATION_ATTEMPT]: 'A' }).secret;
    expect(judge(marked, managementSecretData(reg('t')), {}, { kind: 'new', attempt: 'A' })).toBe('apply');
    expect(judge(marked, managementSecretData(reg('t')), {}, { kind: 'new', attempt: 'B' })).toBe('lost');
    const taken = new FakeSecret(managementSecretData(reg('x', 'other'))).secret;
    expect(judge(taken, managementSecretData(reg('t')), {}, { kind: 'new', attempt: undefined })).toBe(
      'lost',
    );
  });
});

describe('CredentialOutbox', () => {
  it('keeps a rotated token through an outage and stores the newest one once the API answers', async () => {
    const fake = new FakeSecret(managementSecretData(reg('t0')));
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 100);
    const base = fake.secret;
    fake.down = true;
    await expect(outbox.write(writeOf('t1', 'c1', base))).rejects.toBeInstanceOf(WritePendingError);
    // The next call used the in-memory t1 and got t2: the newest replaces t1, the basis stays t0.
    expect(outbox.peek('ns/app', 'app-reg')?.reg).toEqual(reg('t1'));
    await expect(outbox.write(writeOf('t2', 'c1', base))).rejects.toBeInstanceOf(WritePendingError);
    expect(outbox.peek('ns/app', 'app-reg')?.basis).toEqual({ kind: 'update', token: 't0', ours: ['t1'] });
    fake.down = false;
    expect(await outbox.drain(5_000)).toBe(0);
    expect(fake.token()).toBe('t2');
    outbox.close();
  });

  it('a write that landed although its response was lost is ours: the newer token goes over it', async () => {
    const fake = new FakeSecret(managementSecretData(reg('t0')));
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 100);
    const base = fake.secret;
    // t1's write reaches the Secret, but the operator's request times out before the answer.
    fake.lostResponses = 1;
    await expect(outbox.write(writeOf('t1', 'c1', base))).rejects.toBeInstanceOf(WritePendingError);
    expect(fake.token()).toBe('t1');
    // The next provider call used t1 and got t2 (t1 is now invalid at the provider).
    fake.down = true;
    await expect(outbox.write(writeOf('t2', 'c1', base))).rejects.toBeInstanceOf(WritePendingError);
    fake.down = false;
    expect(await outbox.drain(5_000)).toBe(0);
    expect(fake.token()).toBe('t2');
    outbox.close();
  });

  it('re-reads on 409 and applies when the token it replaces is still stored', async () => {
    const fake = new FakeSecret(managementSecretData(reg('t0')));
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    const base = fake.secret;
    // An unrelated change (e.g. an annotation) moves the resourceVersion but keeps t0.
    fake.set(managementSecretData(reg('t0')), { note: 'x' });
    const stored = await outbox.write(writeOf('t1', 'c1', base));
    expect(fake.token()).toBe('t1');
    expect(stored.metadata?.resourceVersion).toBe(String(fake.rv));
    outbox.close();
  });

  it('never overwrites another attempt: the loser is undone and told so', async () => {
    const fake = new FakeSecret({}, { [ANNOTATION_ATTEMPT]: 'A' });
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    const base = fake.secret;
    // A successor wrote its own marker (attempt B) and then its registration.
    fake.set(managementSecretData(reg('winner', 'c2')), {});
    let undone = 0;
    await expect(
      outbox.write(
        writeOf('mine', 'c1', base, async () => {
          undone++;
        }),
      ),
    ).rejects.toBeInstanceOf(RegistrationConflictError);
    expect(undone).toBe(1);
    expect(fake.token()).toBe('winner');
    expect(fake.writes).toBe(0);
    outbox.close();
  });

  it('creates the Secret again when it is gone', async () => {
    const fake = new FakeSecret(managementSecretData(reg('t0')));
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    const base = fake.secret;
    fake.secret = undefined;
    await outbox.write(writeOf('t1', 'c1', base));
    expect(fake.token()).toBe('t1');
    outbox.close();
  });

  it('creates the Secret of a first registration at once (no read), one write', async () => {
    const fake = new FakeSecret({});
    fake.secret = undefined;
    let reads = 0;
    const get = fake.rest.get;
    fake.rest.get = (async (...args: Parameters<typeof get>) => {
      reads++;
      return get(...args);
    }) as typeof get;
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    await outbox.write(writeOf('t1', 'c1', undefined));
    expect(fake.token()).toBe('t1');
    expect(fake.writes).toBe(1);
    expect(reads).toBe(0);
    outbox.close();
  });

  it('a first registration loses to one stored meanwhile (409), and is undone', async () => {
    const fake = new FakeSecret(managementSecretData(reg('winner', 'c2')));
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    let undone = 0;
    await expect(
      outbox.write(
        writeOf('mine', 'c1', undefined, async () => {
          undone++;
        }),
      ),
    ).rejects.toBeInstanceOf(RegistrationConflictError);
    expect(undone).toBe(1);
    expect(fake.token()).toBe('winner');
    outbox.close();
  });

  it("never writes into someone else's Secret that took the name: undone instead", async () => {
    const fake = new FakeSecret({ note: 'dXNlcg==' });
    fake.ownerUid = 'someone-else';
    fake.set({ note: 'dXNlcg==' });
    const outbox = new CredentialOutbox(fake.rest, fake.writer, undefined, 2_000);
    let undone = 0;
    await expect(
      outbox.write(
        writeOf('mine', 'c1', undefined, async () => {
          undone++;
        }),
      ),
    ).rejects.toThrow(/not owned by this OidcClient/);
    expect(undone).toBe(1);
    expect(fake.writes).toBe(0);
    expect(fake.secret?.data).toEqual({ note: 'dXNlcg==' });
    outbox.close();
  });
});
