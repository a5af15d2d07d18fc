// Minimal typings for the parts of node-oidc-provider 9 the test registration server uses.
// The package ships no types and @types/oidc-provider lags behind v9, so we declare only what we
// touch; everything else stays `unknown` on purpose.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type AdapterPayload = Record<string, unknown>;

  /** The storage contract node-oidc-provider expects from `configuration.adapter(modelName)`. */
  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  /** The Koa context subset our middleware reads and writes. */
  export interface KoaContextLike {
    method: string;
    path: string;
    status: number;
    body: unknown;
  }

  export type Middleware = (ctx: KoaContextLike, next: () => Promise<void>) => Promise<void>;

  /** Configuration is validated by the provider at runtime; we only type its outer shape. */
  export interface Configuration {
    adapter?: (modelName: string) => Adapter;
    jwks?: { keys: Record<string, unknown>[] };
    [key: string]: unknown;
  }

  export interface RegistrationAccessTokenInstance {
    clientId: string;
    save(): Promise<string>;
    destroy(): Promise<void>;
  }

  export interface RegistrationAccessTokenModel {
    new (properties: { clientId: string }): RegistrationAccessTokenInstance;
    find(value: string): Promise<RegistrationAccessTokenInstance | undefined>;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    /** Koa: do not print unhandled errors to stderr. */
    silent: boolean;
    readonly RegistrationAccessToken: RegistrationAccessTokenModel;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    use(middleware: Middleware): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export default Provider;
}
