// A Git repository served over smart HTTP on loopback: `git http-backend` (CGI, ships with git)
// behind a tiny Node HTTP server. Flux's source-controller clones it like any Git host; the test
// commits with the git CLI into a working copy and pushes to the served bare repository.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runToolOrThrow } from './exec.js';

export interface GitServer {
  /** Clone URL of the repository, http://127.0.0.1:PORT/config.git */
  url: string;
  /** Requests served, "METHOD /path?query" (the test sees Flux fetching). */
  requests: string[];
  /**
   * Writes `files` (path → content; null deletes the file) into the working copy, commits them with
   * `message` and pushes to the served branch `main`. Returns the new commit's SHA.
   */
  commit(files: Record<string, string | null>, message: string): Promise<string>;
  close(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Platform Team',
  GIT_AUTHOR_EMAIL: 'platform@example.org',
  GIT_COMMITTER_NAME: 'Platform Team',
  GIT_COMMITTER_EMAIL: 'platform@example.org',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export async function startGitServer(): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), 'git-server-'));
  const served = join(root, 'srv');
  const bare = join(served, 'config.git');
  const work = join(root, 'work');
  const git = (args: string[], cwd: string) => runToolOrThrow('git', args, { cwd, env: GIT_ENV });
  await mkdir(served, { recursive: true });
  await git(['init', '--quiet', '--bare', '--initial-branch=main', bare], served);
  await git(['config', 'http.receivepack', 'false'], bare);
  await git(['init', '--quiet', '--initial-branch=main', work], root);
  await git(['remote', 'add', 'origin', bare], work);

  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    cgi(served, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/config.git`,
    requests,
    commit: async (files, message) => {
      for (const [path, content] of Object.entries(files)) {
        const full = join(work, path);
        if (content === null) {
          await rm(full, { force: true });
        } else {
          await mkdir(dirname(full), { recursive: true });
          await writeFile(full, content);
        }
      }
      await git(['add', '-A'], work);
      await git(['commit', '--quiet', '--allow-empty', '-m', message], work);
      await git(['push', '--quiet', 'origin', 'HEAD:main'], work);
      return (await git(['rev-parse', 'HEAD'], work)).stdout.trim();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs one request through `git http-backend` (read-only: upload-pack, i.e. clone and fetch). */
function cgi(projectRoot: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      ...process.env,
      ...GIT_ENV,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {});
  // CGI answer: header lines, an empty line, then the body.
  let head = Buffer.alloc(0);
  let headerDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headerDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headerDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  child.on('close', (code) => {
    if (!headerDone) res.writeHead(code === 0 ? 200 : 500);
    res.end();
  });
  child.on('error', () => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
}
