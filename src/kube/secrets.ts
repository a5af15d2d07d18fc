// Secret reads shared by every part that looks up a Secret by name: a missing Secret is an
// answer (undefined), not an error.
import type { V1Secret } from '@kubernetes/client-node';
import { isKubeStatus, type KubeRest } from './rest.js';

export function secretPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${namespace}/secrets/${name}`;
}

export async function readSecret(
  rest: KubeRest,
  namespace: string,
  name: string,
): Promise<V1Secret | undefined> {
  try {
    return await rest.get<V1Secret>(secretPath(namespace, name));
  } catch (error) {
    if (isKubeStatus(error, 404)) return undefined;
    throw error;
  }
}
