import { describe, expect, it } from 'vitest';
import type { OidcProvider } from '../../../src/api/types.generated.js';
import type { HealthVerdict } from '../../../src/controller/provider-health.js';
import { nextProviderStatus } from '../../../src/controller/provider-health-controller.js';
import { statusPatch } from '../../../src/controller/status.js';

const provider = (generation: number): OidcProvider =>
  ({
    apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
    kind: 'OidcProvider',
    metadata: { name: 'p', namespace: 'ns', generation },
    spec: { issuerUrl: 'https://idp.example.org' },
  }) as OidcProvider;
const endpoints = {
  issuer: 'https://idp.example.org',
  registrationEndpoint: 'https://idp.example.org/reg',
  source: 'discovery' as const,
};
const ok: HealthVerdict = { ready: true, reason: 'Available', message: 'answers', endpoints };
const down: HealthVerdict = {
  ready: false,
  reason: 'DiscoveryFailed',
  message: 'ECONNREFUSED',
  stalled: false,
};
const tls: HealthVerdict = { ready: false, reason: 'TLSError', message: 'not trusted', stalled: true };
const types = (s: ReturnType<typeof nextProviderStatus>) =>
  (s.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`);

describe('provider status from a health verdict (kstatus)', () => {
  it('checking a new generation: Ready=Unknown and Reconciling=True, so GitOps tools wait', () => {
    const s = nextProviderStatus(provider(1), {}, undefined, 't0');
    expect(types(s)).toEqual(['Ready=Unknown/Checking', 'Reconciling=True/Checking']);
    expect(s.observedGeneration).toBe(1);
  });

  it('Ready alone when healthy; Reconciling while a transient failure retries; Stalled when a person must act', () => {
    const checking = nextProviderStatus(provider(1), {}, undefined, 't0');
    const ready = nextProviderStatus(provider(1), checking, ok, 't1');
    expect(types(ready)).toEqual(['Ready=True/Available']);
    expect(ready.registrationEndpoint).toBe('https://idp.example.org/reg');
    const failing = nextProviderStatus(provider(1), ready, down, 't2');
    expect(types(failing)).toEqual(['Ready=False/DiscoveryFailed', 'Reconciling=True/DiscoveryFailed']);
    // The last good endpoints stay while discovery fails.
    expect(failing.registrationEndpoint).toBe('https://idp.example.org/reg');
    const stalled = nextProviderStatus(provider(1), failing, tls, 't3');
    expect(types(stalled)).toEqual(['Ready=False/TLSError', 'Stalled=True/TLSError']);
  });

  it('the same verdict again changes nothing: no patch (idle means idle), lastTransitionTime kept', () => {
    const first = nextProviderStatus(provider(2), {}, down, 't1');
    const again = nextProviderStatus(provider(2), first, down, 't9');
    expect(statusPatch(first, again)).toBeUndefined();
    const recovered = nextProviderStatus(provider(2), again, ok, 't10');
    expect(recovered.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe('t10');
    expect(statusPatch(again, recovered)).toBeDefined();
  });
});
