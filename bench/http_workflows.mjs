// The peers' workload on Continuum, over its HTTP API: workflows of STEPS
// durable steps with trivial bodies, closed loop at each CONCURRENCY level
// (a new workflow starts when one finishes), one JSON line per level.
//
// A workflow is one run of an agent whose in-process scripted model asks for
// the builtin `noop` tool STEPS/2 times, then answers: STEPS/2 + 1 model calls
// and STEPS/2 tool calls, each a journaled effect (STEPS + 1 effects; we count
// STEPS). The client starts it and awaits its result with one request,
// POST /v1/runs {"agent", "input", "wait": true}, which creates a session for
// it too, as the peers' clients start a workflow and await it with one call.
// With SESSION_FIRST=1 it creates the session with a request of its own
// first (POST /v1/sessions, then POST /v1/sessions/{id}/runs): two requests
// and one more durable write per workflow, inside the measured latency.
//
// Env: CONTINUUM_URL, CONTINUUM_API_KEY, AGENT (the agent, already defined),
// STEPS (10), WORKFLOWS (500 per level), CONCURRENCY ("1,64"),
// MAX_SECONDS_PER_LEVEL (20), WARMUP (20), SESSION_FIRST (0). Prints the peers' JSON shape:
// {peer, steps_per_workflow, levels: [{concurrency, workflows, errors, wall_s,
// workflows_per_s, steps_per_s, p50_ms, p99_ms, max_ms, mean_ms}]}.
import http from 'node:http';

const env = (name, fallback) => process.env[name] ?? fallback;
const base = new URL(env('CONTINUUM_URL', 'http://127.0.0.1:8080'));
const apiKey = env('CONTINUUM_API_KEY', '');
const agent = env('AGENT', 'bench');
const steps = Number(env('STEPS', '10'));
const workflows = Number(env('WORKFLOWS', '500'));
const levels = env('CONCURRENCY', '1,64').split(',').map(Number);
const maxSeconds = Number(env('MAX_SECONDS_PER_LEVEL', '20'));
const warmup = Number(env('WARMUP', '20'));
const sessionFirst = env('SESSION_FIRST', '0') === '1';

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1024 });

function post(path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const request = http.request({
      host: base.hostname, port: base.port, path, method: 'POST', agent: keepAlive,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data),
                 authorization: `Bearer ${apiKey}` },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode >= 300) return reject(new Error(`${path}: ${response.statusCode} ${text.slice(0, 200)}`));
        resolve(JSON.parse(text));
      });
    });
    request.on('error', reject);
    request.end(data);
  });
}

async function start(index) {
  if (!sessionFirst) return post('/v1/runs', { agent, input: `w${index}`, wait: true });
  const session = await post('/v1/sessions', { agent });
  return post(`/v1/sessions/${session.id}/runs`, { input: `w${index}`, wait: true });
}

async function workflow(index) {
  const run = await start(index);
  if (run.status !== 'completed') throw new Error(`run ${run.id} ended ${run.status}: ${JSON.stringify(run.error)}`);
  return run;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// Closed loop: `concurrency` workers, each starting the next workflow when
// its last one ends, until `total` have started or the time cap passes.
async function closedLoop(total, concurrency, capSeconds) {
  const latencies = [];
  let started = 0, errors = 0, firstError = null;
  const deadline = performance.now() + capSeconds * 1000;
  const begin = performance.now();
  async function worker() {
    while (started < total && performance.now() < deadline) {
      const index = started++;
      const t0 = performance.now();
      try {
        await workflow(index);
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors += 1;
        firstError ??= String(error.message ?? error);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, errors, firstError, wall_s: (performance.now() - begin) / 1000 };
}

await closedLoop(warmup, Math.min(8, Math.max(1, warmup)), maxSeconds);
const results = [];
for (const concurrency of levels) {
  const { latencies, errors, firstError, wall_s } = await closedLoop(workflows, concurrency, maxSeconds);
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((sum, x) => sum + x, 0) / Math.max(1, latencies.length);
  const level = {
    concurrency, workflows: latencies.length, errors, wall_s: +wall_s.toFixed(3),
    workflows_per_s: +(latencies.length / wall_s).toFixed(1),
    steps_per_s: +((latencies.length * steps) / wall_s).toFixed(1),
    p50_ms: +percentile(latencies, 50).toFixed(2), p99_ms: +percentile(latencies, 99).toFixed(2),
    max_ms: +latencies[latencies.length - 1].toFixed(2), mean_ms: +mean.toFixed(2),
  };
  if (firstError) level.first_error = firstError;
  results.push(level);
}
// The peers' shape (../shared/peers): one line, a level per concurrency.
console.log(JSON.stringify({ peer: 'continuum', steps_per_workflow: steps,
                              requests_per_workflow: sessionFirst ? 2 : 1, levels: results }));
keepAlive.destroy();
