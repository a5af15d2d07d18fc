// Reading a registration to adopt from a Secret: the client JSON the IAM dashboard shows (one key,
// client.json by default) or the four keys on their own.
import type { V1Secret } from '@kubernetes/client-node';
import { decode } from './secrets.js';

export interface AdoptionCandidate {
  clientId: string;
  clientSecret?: string;
  registrationAccessToken: string;
  registrationClientUri: string;
}

const KEYS = ['client_id', 'client_secret', 'registration_access_token', 'registration_client_uri'] as const;

/** Errors name what is missing or malformed, never a value. */
export function parseAdoptionSecret(secret: V1Secret, key: string): AdoptionCandidate | { error: string } {
  const json = decode(secret, key);
  let src: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      const parsed: unknown = JSON.parse(json);
      if (!parsed || typeof parsed !== 'object') return { error: `key ${key} is not a JSON object` };
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
  const rat = str('registration_access_token');
  const uri = str('registration_client_uri');
  if (!clientId || !rat || !uri) {
    const missing = [
      !clientId && 'client_id',
      !rat && 'registration_access_token',
      !uri && 'registration_client_uri',
    ];
    return { error: `missing ${missing.filter(Boolean).join(', ')}` };
  }
  return {
    clientId,
    clientSecret: str('client_secret'),
    registrationAccessToken: rat,
    registrationClientUri: uri,
  };
}
