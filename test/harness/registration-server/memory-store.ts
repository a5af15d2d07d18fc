// In-memory storage for node-oidc-provider with direct access for tests.
//
// The provider's own memory adapter keeps its data private (and one of its flavours is a module-wide
// singleton shared by every provider in the process), so tests could not read or alter clients
// out of band. This one keeps one Map per server and exposes the operations the harness needs.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { StoredClient } from './types.js';

interface Entry {
  payload: AdapterPayload;
  /** Epoch milliseconds; undefined = never expires. */
  expiresAt: number | undefined;
}

// Model names used by node-oidc-provider as key prefixes.
const CLIENT = 'Client';
const RAT = 'RegistrationAccessToken';

export class MemoryStore {
  readonly #entries = new Map<string, Entry>();

  #read(key: string): AdapterPayload | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  #scan(model: string, predicate: (payload: AdapterPayload) => boolean): [string, AdapterPayload][] {
    const hits: [string, AdapterPayload][] = [];
    for (const key of [...this.#entries.keys()]) {
      if (!key.startsWith(`${model}:`)) continue;
      const payload = this.#read(key);
      if (payload && predicate(payload)) hits.push([key, payload]);
    }
    return hits;
  }

  /** The factory handed to the provider as `configuration.adapter`. */
  adapterFor = (model: string): Adapter => {
    const keyOf = (id: string): string => `${model}:${id}`;
    // Payloads are cloned in and out so neither the provider nor a test can alter stored state by
    // holding on to an object.
    return {
      upsert: async (id, payload, expiresIn) => {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
        this.#entries.set(keyOf(id), { payload: structuredClone(payload), expiresAt });
      },
      find: async (id) => {
        const payload = this.#read(keyOf(id));
        return payload && structuredClone(payload);
      },
      findByUid: async (uid) => {
        const [hit] = this.#scan(model, (p) => p.uid === uid);
        return hit && structuredClone(hit[1]);
      },
      findByUserCode: async (userCode) => {
        const [hit] = this.#scan(model, (p) => p.userCode === userCode);
        return hit && structuredClone(hit[1]);
      },
      consume: async (id) => {
        const entry = this.#entries.get(keyOf(id));
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        this.#entries.delete(keyOf(id));
      },
      revokeByGrantId: async (grantId) => {
        // Grants span several models (AccessToken, RefreshToken, ...), so scan them all.
        for (const [key, entry] of this.#entries) {
          if (entry.payload.grantId === grantId) this.#entries.delete(key);
        }
      },
    };
  };

  listClients(): StoredClient[] {
    return this.#scan(CLIENT, () => true).map(([key, payload]) => ({
      clientId: key.slice(CLIENT.length + 1),
      metadata: structuredClone(payload),
    }));
  }

  getClient(clientId: string): StoredClient | undefined {
    const payload = this.#read(`${CLIENT}:${clientId}`);
    return payload && { clientId, metadata: structuredClone(payload) };
  }

  updateClient(clientId: string, patch: Record<string, unknown>): void {
    const key = `${CLIENT}:${clientId}`;
    const entry = this.#entries.get(key);
    if (!entry || !this.#read(key)) throw new Error(`registration server: no client ${clientId}`);
    const next: AdapterPayload = { ...entry.payload };
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) delete next[field];
      else next[field] = structuredClone(value);
    }
    entry.payload = next;
  }

  deleteClient(clientId: string): void {
    this.#entries.delete(`${CLIENT}:${clientId}`);
    // The real servers revoke the RAT with the client; the provider would answer 401 anyway
    // (client mismatch), but leaving orphaned tokens around would hide bugs in revoke tests.
    this.revokeRegistrationAccessTokens(clientId);
  }

  revokeRegistrationAccessTokens(clientId: string): void {
    for (const [key] of this.#scan(RAT, (p) => p.clientId === clientId)) this.#entries.delete(key);
  }
}
