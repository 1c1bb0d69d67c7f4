// Processes and helpers for the end-to-end tests that drive Continuum's
// OpenAI-compatible API with the official `openai` SDK (the Node twin of
// tests/integration/harness.py).
//
// Processes (each a child with its stderr+stdout in a log file under the test dir):
//   MockModel        `continuum-mock-model --script FILE --listen 127.0.0.1:PORT`
//   ContinuumServer  `continuum serve --data DIR --listen 127.0.0.1:PORT`
//                    (start, stop = SIGTERM and wait, restart on the same data dir)
// Helpers:
//   openaiClient     the SDK client for a server (Bearer admin key, no retries)
//   nativeRequest    JSON over fetch against the native API (/v1/agents, /v1/sessions, ...)
//   waitUntil        polls a condition; its timeout is a hang guard, never a speed check
//
// Environment: CONTINUUM_BUILD_DIR (default <repo>/build) holds the binaries;
// CONTINUUM_TEST_KEEP=1 keeps the temp dir; CONTINUUM_TEST_VERBOSE=1 always dumps logs.
// Only SQLite (the default store in the data dir) is used.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_DIR = process.env.CONTINUUM_BUILD_DIR || path.join(REPO_DIR, 'build');

// Hang guards (the tests never assert on wall-clock time).
export const START_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 30_000;
export const RUN_TIMEOUT_MS = 120_000;
export const TEST_TIMEOUT_MS = 240_000;

const LOG_TAIL_BYTES = 20_000;

export function binary(name) {
  return path.join(BUILD_DIR, name);
}

export function binariesPresent() {
  return ['continuum', 'continuum-mock-model'].every((name) => {
    try {
      fs.accessSync(binary(name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition()` (may be async) until it returns a truthy value, which is returned.
 *  Throws after `timeoutMs` (a guard against hangs). Errors from `condition` propagate. */
export async function waitUntil(condition, { timeoutMs = RUN_TIMEOUT_MS, intervalMs = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await sleep(intervalMs);
  }
}

/** The environment of the test runner without CONTINUUM_* and OPENAI_* variables, plus `extra`. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('CONTINUUM_') && !name.startsWith('OPENAI_')) env[name] = value;
  }
  return { ...env, ...extra };
}

class ProcessExited extends Error {
  constructor(message, log) {
    super(message);
    this.log = log;
  }
}

/** A child process whose output goes to a log file kept across restarts. */
class ChildProcess {
  constructor(name, logDir) {
    this.name = name;
    this.logPath = path.join(logDir, `${name}.log`);
    this.child = null;
    this.exit = null; // resolves to the exit code (or signal name) of the current child
    this.logOffset = 0;
  }

  spawn(argv, env) {
    this.logOffset = fs.existsSync(this.logPath) ? fs.statSync(this.logPath).size : 0;
    fs.appendFileSync(this.logPath, `\n===== start ${argv.join(' ')} at ${new Date().toISOString()} =====\n`);
    const fd = fs.openSync(this.logPath, 'a');
    try {
      const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', fd, fd] });
      this.child = child;
      this.exit = new Promise((resolve) => {
        child.once('exit', (code, signal) => resolve(code ?? signal));
        child.once('error', (error) => resolve(`spawn error: ${error.message}`));
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  alive() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code. */
  async stop(timeoutMs = STOP_TIMEOUT_MS) {
    if (this.child === null) return null;
    const { child, exit } = this;
    if (this.alive()) child.kill('SIGTERM');
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    let code = await Promise.race([exit, timedOut]);
    clearTimeout(timer);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      code = await exit;
      fs.appendFileSync(this.logPath, `\n===== did not exit within ${timeoutMs} ms of SIGTERM; killed =====\n`);
    }
    this.child = null;
    return code;
  }

  logText(tailBytes = LOG_TAIL_BYTES, fromOffset = 0) {
    try {
      const data = fs.readFileSync(this.logPath);
      const start = Math.max(fromOffset, data.length - tailBytes);
      return data.subarray(start).toString('utf8');
    } catch {
      return '';
    }
  }

  async waitHttpOk(url) {
    await waitUntil(
      async () => {
        if (!this.alive()) {
          const log = this.logText(LOG_TAIL_BYTES, this.logOffset);
          throw new ProcessExited(`${this.name} exited with ${await this.exit} during start:\n${log}`, log);
        }
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
          await response.arrayBuffer();
          return response.status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: START_TIMEOUT_MS, message: `${this.name} to answer ${url}` },
    );
  }

  /** Runs `spawnAndWait()`; if the process could not bind its port (another
   *  process took it after freePort() released it), retries on a new port. */
  async startOnFreePort(spawnAndWait, attempts = 3) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await spawnAndWait();
      } catch (error) {
        const portTaken = error instanceof ProcessExited && /address already in use/i.test(error.log);
        if (!portTaken || attempt >= attempts) {
          if (this.alive()) await this.stop();
          throw error;
        }
        this.child = null;
        this.port = await freePort();
      }
    }
  }
}

/** `continuum-mock-model` serving `scripts` (the format of src/providers/script.h:
 *  {"<model name>": {"steps": [{"content", "tool_calls", "delay_ms", ...}]}}). */
export class MockModel extends ChildProcess {
  constructor(logDir, scripts) {
    super('mock_model', logDir);
    this.scriptPath = path.join(logDir, 'mock_model_script.json');
    fs.writeFileSync(this.scriptPath, JSON.stringify({ scripts }, null, 1));
    this.port = 0;
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  async start() {
    this.port = await freePort();
    await this.startOnFreePort(async () => {
      this.spawn([binary('continuum-mock-model'), '--script', this.scriptPath, '--listen', `127.0.0.1:${this.port}`],
        cleanEnv());
      await this.waitHttpOk(`http://127.0.0.1:${this.port}/healthz`);
    });
    return this;
  }
}

/** `continuum serve` on `dataDir` (SQLite), with `apiKey` as the admin key and the
 *  mock model as the default OpenAI endpoint. */
/** With CONTINUUM_TEST_STORE=postgres: a fresh database on the cluster at
 *  CONTINUUM_TEST_POSTGRES_URL (created with psql), as the Python harness does;
 *  otherwise null (SQLite in the data dir). */
function newStoreUrl() {
  if (process.env.CONTINUUM_TEST_STORE !== 'postgres') return null;
  const base = process.env.CONTINUUM_TEST_POSTGRES_URL;
  if (!base) throw new Error('CONTINUUM_TEST_STORE=postgres needs CONTINUUM_TEST_POSTGRES_URL');
  const name = `oa_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', ['-qX', '-v', 'ON_ERROR_STOP=1', base, '-c', `CREATE DATABASE ${name}`], { stdio: 'ignore' });
  return `${base.slice(0, base.lastIndexOf('/'))}/${name}`;
}

export class ContinuumServer extends ChildProcess {
  constructor(logDir, dataDir, apiKey, mockBaseUrl, { name = 'continuum', env = {} } = {}) {
    super(name, logDir);
    this.dataDir = dataDir;
    this.apiKey = apiKey;
    this.mockBaseUrl = mockBaseUrl;
    this.extraEnv = env;
    this.port = 0;
    this.storeUrl = newStoreUrl();  // kept across restarts, like the data dir
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  environment() {
    return cleanEnv({
      CONTINUUM_API_KEY: this.apiKey,
      CONTINUUM_ALLOW_PRIVATE_TOOL_ADDRESSES: '1',
      OPENAI_API_KEY: 'sk-test-not-a-real-key',
      OPENAI_BASE_URL: this.mockBaseUrl,
      ...this.extraEnv,
    });
  }

  /** Starts the server and waits for /readyz. The port stays the same across
   *  restarts unless another process took it meanwhile; take a fresh client after
   *  any (re)start. */
  async start() {
    fs.mkdirSync(this.dataDir, { recursive: true });
    if (!this.port) this.port = await freePort();
    await this.startOnFreePort(async () => {
      const store = this.storeUrl ? ['--store', this.storeUrl] : [];
      this.spawn([binary('continuum'), 'serve', '--data', this.dataDir, '--listen', `127.0.0.1:${this.port}`,
        ...store], this.environment());
      await this.waitHttpOk(`${this.baseUrl}/readyz`);
    });
    return this;
  }

  /** Clean restart: SIGTERM, wait for the exit, start again on the same data dir.
   *  Returns the exit code of the stopped process. */
  async restart() {
    const code = await this.stop();
    await this.start();
    return code;
  }
}

/** The SDK client the way a user would configure it against Continuum. */
export function openaiClient(server, { apiKey = server.apiKey } = {}) {
  return new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey, maxRetries: 0, timeout: RUN_TIMEOUT_MS });
}

/** A JSON request to the native API; returns {status, body, text}. */
export async function nativeRequest(server, method, urlPath, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${server.apiKey}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${server.baseUrl}${urlPath}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text.trim() ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: response.status, body: parsed, text };
}

/** Like nativeRequest, but throws unless the status is one of `expect`. */
export async function nativeOk(server, method, urlPath, body, expect = [200, 201, 202]) {
  const response = await nativeRequest(server, method, urlPath, body);
  if (!expect.includes(response.status)) {
    throw new Error(`${method} ${urlPath} -> ${response.status} ${response.text.slice(0, 2000)}`);
  }
  return response.body;
}

/** Creates an agent through the native API whose model is `script` on the mock. */
export async function createAgent(server, mock, name, script, { tools = [], instructions, limits } = {}) {
  return nativeOk(server, 'POST', '/v1/agents', {
    name,
    model: { provider: 'openai', model: script, base_url: mock.baseUrl },
    instructions: instructions ?? `You are the test agent ${name}.`,
    tools,
    ...(limits ? { limits } : {}),
  }, [201]);
}

/** Every item of a session through the native API (oldest first), following the cursor. */
export async function nativeSessionItems(server, sessionId) {
  const items = [];
  let after = null;
  for (let page = 0; page < 10_000; page += 1) {
    const query = `?limit=100${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    const body = await nativeOk(server, 'GET', `/v1/sessions/${encodeURIComponent(sessionId)}/items${query}`,
      undefined, [200]);
    items.push(...body.data);
    if (!body.has_more) return items;
    after = body.next_cursor ?? body.data.at(-1).seq;
  }
  throw new Error('too many pages of session items');
}

/** The processes of one test file: a temp dir, a mock model and Continuum servers.
 *  `close()` stops them all and removes the dir unless a test failed (then the
 *  logs are printed and the dir kept). */
export class TestWorld {
  constructor(scripts) {
    this.scripts = scripts;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'continuum-openai-e2e-'));
    this.apiKey = `test-${randomBytes(12).toString('hex')}`;
    this.processes = [];
    this.failed = false;
  }

  async start() {
    this.mock = await this.track(new MockModel(this.tmp, this.scripts)).start();
    this.server = await this.newServer('continuum');
    return this;
  }

  track(process) {
    this.processes.push(process);
    return process;
  }

  /** Another Continuum server with its own data dir (sharing the mock model). */
  async newServer(name) {
    const server = this.track(new ContinuumServer(this.tmp, path.join(this.tmp, `${name}-data`), this.apiKey,
      this.mock.baseUrl, { name }));
    return server.start();
  }

  /** Runs `fn`, remembering a failure so close() keeps the logs. */
  async guard(fn) {
    try {
      return await fn();
    } catch (error) {
      this.failed = true;
      throw error;
    }
  }

  dumpLogs() {
    for (const process of this.processes) {
      console.error(`\n----- ${process.name} (${process.logPath}) -----\n${process.logText()}`);
    }
    console.error('----- end of logs -----');
  }

  async close() {
    if (this.failed || process.env.CONTINUUM_TEST_VERBOSE) this.dumpLogs();
    for (const child of [...this.processes].reverse()) {
      try {
        await child.stop(15_000);
      } catch (error) {
        console.error(`cleanup of ${child.name} failed: ${error}`);
      }
    }
    if (this.failed || process.env.CONTINUUM_TEST_KEEP) {
      console.error(`kept test dir ${this.tmp}`);
    } else {
      fs.rmSync(this.tmp, { recursive: true, force: true });
    }
  }
}
