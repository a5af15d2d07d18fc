// The trust material a provider resource references: its private CA bundle and its initial access
// token, each read from a Secret (GET by name: the operator does not watch every Secret). Shared by
// the registration clients (providers.ts) and the provider health check (provider-health.ts).
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type {
  ClusterOidcProvider,
  NamespacedSecretKeySelector,
  OidcProvider,
} from '../api/types.generated.js';
import type { KubeRest } from '../kube/rest.js';
import { readSecret } from '../kube/secrets.js';
import { decode } from './secrets.js';

export type AnyProvider = OidcProvider | ClusterOidcProvider;

/** The provider cannot be used yet; `reason` goes on the OidcClient's Ready condition. */
export class ProviderNotReadyError extends Error {
  constructor(
    readonly reason: 'ProviderNotFound' | 'ProviderUnavailable' | 'ProviderInvalid',
    message: string,
  ) {
    super(message);
    this.name = 'ProviderNotReadyError';
  }
}

/** What the referenced Secrets hold, read once per build, re-check or health check. */
export interface Trust {
  caPem?: string;
  initialAccessToken?: string;
  /** Where the CA bundle came from ("namespace/name"), for messages. */
  caSource?: string;
  fingerprint: string;
}

/** Reads the CA bundle and the initial access token the provider references (each Secret once). */
export async function readProviderTrust(rest: KubeRest, provider: AnyProvider): Promise<Trust> {
  const spec = provider.spec;
  const ns = provider.metadata.namespace;
  const read = new Map<string, Promise<V1Secret | undefined>>();
  const ca = spec.caSecretRef ? await readSecretKey(rest, spec.caSecretRef, ns, 'ca.crt', read) : undefined;
  const iat = spec.initialAccessTokenSecretRef
    ? await readSecretKey(rest, spec.initialAccessTokenSecretRef, ns, 'token', read)
    : undefined;
  const fingerprint = createHash('sha256')
    .update(`${ca?.value ?? ''}\0${iat?.value ?? ''}`)
    .digest('hex');
  return {
    ...(ca ? { caPem: ca.value, caSource: ca.source } : {}),
    ...(iat ? { initialAccessToken: iat.value } : {}),
    fingerprint,
  };
}

async function readSecretKey(
  rest: KubeRest,
  ref: NamespacedSecretKeySelector,
  providerNamespace: string | undefined,
  defaultKey: string,
  read: Map<string, Promise<V1Secret | undefined>>,
): Promise<{ value: string; source: string }> {
  const ns = providerNamespace ?? ref.namespace;
  if (providerNamespace && ref.namespace && ref.namespace !== providerNamespace) {
    throw new ProviderNotReadyError(
      'ProviderInvalid',
      `Secret ${ref.name} must be in namespace ${providerNamespace}`,
    );
  }
  if (!ns) throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ref.name}: namespace is required`);
  const key = ref.key ?? defaultKey;
  const path = `${ns}/${ref.name}`;
  let pending = read.get(path);
  if (!pending) {
    pending = readSecret(rest, ns, ref.name);
    read.set(path, pending);
  }
  const secret = await pending;
  if (!secret) throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ns}/${ref.name} not found`);
  const value = decode(secret, key);
  if (!value)
    throw new ProviderNotReadyError('ProviderInvalid', `Secret ${ns}/${ref.name} has no key ${key}`);
  return { value, source: `${path} key ${key}` };
}
