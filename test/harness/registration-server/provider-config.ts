// node-oidc-provider configuration that mimics INDIGO IAM's registration API.
import { randomUUID } from 'node:crypto';
import type { Adapter, Configuration, Middleware, Provider } from 'oidc-provider';
import type { RatRotation } from './types.js';

/** INDIGO IAM serves RFC 7591 registration here; RFC 7592 management is at `${REGISTRATION_PATH}/{client_id}`. */
export const REGISTRATION_PATH = '/iam/api/client-registration';
export const TOKEN_PATH = '/token';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';

export interface ConfigInput {
  rotation: RatRotation;
  /** Route paths (below the issuer's own path). */
  registrationPath: string;
  tokenPath: string;
  initialAccessToken: string | undefined;
  adapter: (model: string) => Adapter;
  jwks: { keys: Record<string, unknown>[] };
}

export function buildConfiguration({
  rotation,
  registrationPath,
  tokenPath,
  initialAccessToken,
  adapter,
  jwks,
}: ConfigInput): Configuration {
  return {
    adapter,
    jwks,
    routes: { registration: registrationPath, token: tokenPath },
    // The scopes IAM's documentation registers clients with. Claims-defined scopes are added by the
    // provider automatically; listing them keeps the scope validation explicit.
    scopes: ['openid', 'offline_access', 'profile', 'email', 'address', 'phone'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'family_name', 'given_name', 'preferred_username', 'updated_at'],
      email: ['email', 'email_verified'],
      address: ['address'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    // Same as the provider's defaults, spelled out because the operator compares against them:
    // fields omitted on POST/PUT come back with these values.
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      registration: {
        enabled: true,
        // A string means "this exact Bearer value is required on POST"; false = open registration (IAM default).
        initialAccessToken: initialAccessToken ?? false,
        // IAM issues UUID client ids.
        idFactory: () => randomUUID(),
        issueRegistrationAccessToken: true,
      },
      registrationManagement: {
        enabled: true,
        // The provider only rotates on PUT; rotateOnRead() below extends that to GET.
        rotateRegistrationAccessToken: rotation !== 'never',
      },
    },
    // Explicit values: the defaults are functions that print "you SHOULD change it" notices.
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      BackchannelAuthenticationRequest: 600,
      ClientCredentials: 600,
      DeviceCode: 600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 3600,
      PreAuthorizedCode: 600,
      RefreshToken: 86400,
      Session: 3600,
    },
    clientBasedCORS: () => false,
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    // JSON instead of the default HTML page, without the "SHOULD change" notice.
    renderError: async (ctx: { type: string; body: unknown }, out: unknown) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Some servers do not advertise registration_endpoint although registration works. */
export function stripRegistrationEndpoint(): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.path === DISCOVERY_PATH && isRecord(ctx.body)) delete ctx.body.registration_endpoint;
  };
}

/**
 * Servers without RFC 7592 management (or INDIGO IAM when the initial access token is a user's
 * token) answer the registration with credentials only: no registration_access_token and no
 * registration_client_uri. The client is registered all the same.
 */
export function stripManagementCredentials(registrationPath = REGISTRATION_PATH): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST' || ctx.path !== registrationPath || !isRecord(ctx.body)) return;
    delete ctx.body.registration_access_token;
    delete ctx.body.registration_client_uri;
  };
}

/**
 * Keycloak answers every management call with a new RAT and invalidates the one used. The provider
 * does that for PUT only (rotateRegistrationAccessToken); this does the same for a successful GET.
 */
export function rotateOnRead(provider: Provider, registrationPath = REGISTRATION_PATH): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'GET' || ctx.status !== 200 || !ctx.path.startsWith(`${registrationPath}/`)) return;
    const body = ctx.body;
    if (!isRecord(body) || typeof body.registration_access_token !== 'string') return;
    const used = await provider.RegistrationAccessToken.find(body.registration_access_token);
    if (!used) return;
    const fresh = new provider.RegistrationAccessToken({ clientId: used.clientId });
    body.registration_access_token = await fresh.save();
    await used.destroy();
  };
}
