// Reads benchmark JSON lines (one per run: {config?, peer, levels: [...]}) on
// stdin and prints, per system (its `config`, else its `peer`; in the order
// first seen), one line with each level's metrics as the median over its runs.
// A peer's crash-and-resume check passes only if it passed in every run.
import fs from 'node:fs';

const runs = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number').sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null;
};
const resumed = (run) => run.resume_ok_all ?? run.resume_after_restart?.resume_ok;

const systems = new Map();
for (const run of runs) {
  const name = run.config ?? run.peer;
  if (!systems.has(name)) systems.set(name, []);
  systems.get(name).push(run);
}
for (const group of systems.values()) {
  const first = group[0];
  const levels = (first.levels ?? []).map((level, i) => {
    const out = { concurrency: level.concurrency };
    for (const key of ['workflows', 'errors', 'workflows_per_s', 'steps_per_s', 'p50_ms', 'p99_ms', 'max_ms']) {
      out[key] = median(group.map((run) => run.levels?.[i]?.[key]));
    }
    return out;
  });
  const line = { ...first, runs: group.length, levels };
  delete line.resume_after_restart;
  if (group.some((run) => resumed(run) !== undefined)) line.resume_ok_all = group.every((run) => resumed(run) === true);
  console.log(JSON.stringify(line));
}
