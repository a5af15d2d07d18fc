// The two parts of undici the operator uses, loaded directly: undici's index also loads fetch,
// WebSocket, EventSource, cookie and cache stores (node:sqlite), mocks and proxies, ~80 more Node
// built-ins and about 10 MiB of RSS that a controller never uses. Same code, same behaviour.
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

export const Agent: typeof UndiciAgent = require('undici/lib/dispatcher/agent.js');
export type Agent = UndiciAgent;

const dispatchRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  opts: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher };

/** undici's `request(url, options)`, always on the dispatcher given (never the global one). */
export function request(url: string | URL, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = opts;
  const u = typeof url === 'string' ? new URL(url) : url;
  return dispatchRequest.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}` });
}
