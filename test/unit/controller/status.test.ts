import { describe, expect, it } from 'vitest';
import { statusPatch } from '../../../src/controller/status.js';

describe('statusPatch', () => {
  it('nulls keys that vanished, in nested objects too (a merge patch would keep them)', () => {
    const old: Record<string, unknown> = {
      clientId: 'a',
      rotation: { previousClientId: 'p', lastRequest: 'v1' },
      secretName: 's',
    };
    const next = { clientId: 'b', rotation: { lastRequest: 'v1' } };
    expect(statusPatch(old, next)).toEqual({
      status: { clientId: 'b', rotation: { previousClientId: null, lastRequest: 'v1' }, secretName: null },
    });
    expect(statusPatch(old, { clientId: 'a' })).toEqual({
      status: { clientId: 'a', rotation: null, secretName: null },
    });
  });

  it('writes nothing when nothing changed', () => {
    expect(
      statusPatch({ rotation: { lastRequest: 'v1' } }, { rotation: { lastRequest: 'v1' } }),
    ).toBeUndefined();
  });
});
