// Reading a registration to adopt from a Secret: the client JSON the provider answered with (one
// key, client.json by default) or the four keys on their own. '' and null mean "not there", the way
// servers write them.
import type { V1Secret } from '@kubernetes/client-node';
import { decode } from './secrets.js';

export type AdoptionCandidate =
  | {
      kind: 'managed';
      clientId: string;
      clientSecret?: string;
      registrationAccessToken: string;
      registrationClientUri: string;
    }
  /** The provider gave no registration access token and URI (no RFC 7592): credentials only. */
  | { kind: 'unmanaged'; clientId: string; clientSecret?: string };

const KEYS = ['client_id', 'client_secret', 'registration_access_token', 'registration_client_uri'] as const;

/** Errors name what is missing or malformed, never a value. */
export function parseAdoptionSecret(secret: V1Secret, key: string): AdoptionCandidate | { error: string } {
  const json = decode(secret, key);
  let src: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      const parsed: unknown = JSON.parse(json);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
        return { error: `key ${key} is not a JSON object` };
      src = parsed as Record<string, unknown>;
    } catch {
      return { error: `key ${key} is not valid JSON` };
    }
  } else {
    for (const k of KEYS) {
      const v = decode(secret, k);
      if (v !== undefined) src[k] = v;
    }
  }
  const str = (k: string): string | undefined =>
    typeof src[k] === 'string' && src[k] !== '' ? (src[k] as string) : undefined;
  const clientId = str('client_id');
  const clientSecret = str('client_secret');
  const rat = str('registration_access_token');
  const uri = str('registration_client_uri');
  if (!clientId) return { error: 'missing client_id' };
  if (!rat && !uri) {
    return clientSecret === undefined
      ? { kind: 'unmanaged', clientId }
      : { kind: 'unmanaged', clientId, clientSecret };
  }
  if (!rat || !uri)
    return { error: `missing ${rat ? 'registration_client_uri' : 'registration_access_token'}` };
  const candidate: AdoptionCandidate = {
    kind: 'managed',
    clientId,
    registrationAccessToken: rat,
    registrationClientUri: uri,
  };
  if (clientSecret !== undefined) candidate.clientSecret = clientSecret;
  return candidate;
}
