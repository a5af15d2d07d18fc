import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { clientLabelValue, LABEL_CLIENT, ownerClientName } from '../../../src/controller/names.js';
import { eventName } from '../../../src/kube/events.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('names for long OidcClient names', () => {
  it('the client label keeps names up to 63 characters and shortens longer ones, uniquely', () => {
    expect(clientLabelValue('web')).toBe('web');
    expect(clientLabelValue('a'.repeat(63))).toBe('a'.repeat(63));
    const long1 = clientLabelValue(`${'a'.repeat(60)}-one`);
    const long2 = clientLabelValue(`${'a'.repeat(60)}-two`);
    expect(long1).not.toBe(long2);
    for (const name of [`${'a'.repeat(51)}.-${'b'.repeat(20)}`, 'x'.repeat(253), long1]) {
      const v = clientLabelValue(name);
      expect(v.length).toBeLessThanOrEqual(63);
      expect(v).toMatch(LABEL_VALUE);
    }
    expect(long1.startsWith('a'.repeat(52))).toBe(true);
  });

  it('maps a Secret back through its controller ownerReference, else (older Secrets) the label', () => {
    const long = 'n'.repeat(200);
    const owned: V1Secret = {
      metadata: {
        labels: { [LABEL_CLIENT]: clientLabelValue(long) },
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'other', uid: 'x' },
          {
            apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
            kind: 'OidcClient',
            name: long,
            uid: 'u',
            controller: true,
          },
        ],
      },
    };
    expect(ownerClientName(owned)).toBe(long);
    expect(ownerClientName({ metadata: { labels: { [LABEL_CLIENT]: 'old' } } })).toBe('old');
    expect(ownerClientName({ metadata: {} })).toBeUndefined();
  });

  it('Event names stay valid for 253-character object names', () => {
    for (const name of ['web', 'a'.repeat(253), `${'a'.repeat(235)}-.b${'c'.repeat(15)}`]) {
      const n = eventName(name);
      expect(n.length).toBeLessThanOrEqual(253);
      expect(n).toMatch(SUBDOMAIN);
    }
  });
});
