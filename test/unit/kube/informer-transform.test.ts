// What the informers drop before caching: server-side apply bookkeeping always, kubectl's
// last-applied copy only where asked (resources the operator never PUTs).
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  LAST_APPLIED_ANNOTATION,
  stripApplyBookkeeping,
  stripManagedFields,
} from '../../../src/kube/informer.js';

function applied(): KubernetesObject {
  return {
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcClient',
    metadata: {
      name: 'web',
      namespace: 'team',
      annotations: {
        [LAST_APPLIED_ANNOTATION]: '{"apiVersion":"oidc.dcr-operator.dev/v1alpha1","kind":"OidcClient"}',
        'oidc.dcr-operator.dev/reregister': 'now',
      },
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update' }],
    },
  };
}

describe('informer transforms', () => {
  it('stripManagedFields keeps every annotation', () => {
    const obj = stripManagedFields(applied());
    expect(obj.metadata?.managedFields).toBeUndefined();
    expect(Object.keys(obj.metadata?.annotations ?? {})).toEqual([
      LAST_APPLIED_ANNOTATION,
      'oidc.dcr-operator.dev/reregister',
    ]);
  });

  it('stripApplyBookkeeping also drops the last-applied copy and nothing else', () => {
    const obj = stripApplyBookkeeping(applied());
    expect(obj.metadata?.managedFields).toBeUndefined();
    expect(obj.metadata?.annotations).toEqual({ 'oidc.dcr-operator.dev/reregister': 'now' });
    expect(obj.metadata?.name).toBe('web');
  });

  it('stripApplyBookkeeping leaves objects without annotations alone', () => {
    const obj: KubernetesObject = { metadata: { name: 'plain' } };
    expect(stripApplyBookkeeping(obj)).toEqual({ metadata: { name: 'plain' } });
  });
});
