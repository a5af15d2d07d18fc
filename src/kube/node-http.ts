// node:http and node:https through require, not `import`: an ES import of a builtin builds its full
// namespace, which evaluates node:http's lazy WebSocket/CloseEvent/MessageEvent getters and so
// loads Node's bundled undici and http2 (+13 MB RSS in a process that uses neither).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http: typeof import('node:http') = require('node:http');
export const https: typeof import('node:https') = require('node:https');
