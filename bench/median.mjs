// Reads benchmark JSON lines (one per run of one system: {levels: [...]}) on
// stdin; prints one line with each level's metrics as the median over runs.
import fs from 'node:fs';

const runs = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number').sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null;
};
const first = runs[0] ?? { levels: [] };
const levels = first.levels.map((level, i) => {
  const out = { concurrency: level.concurrency };
  for (const key of ['workflows', 'errors', 'workflows_per_s', 'steps_per_s', 'p50_ms', 'p99_ms', 'max_ms']) {
    out[key] = median(runs.map((run) => run.levels?.[i]?.[key]));
  }
  return out;
});
console.log(JSON.stringify({ ...first, runs: runs.length, levels }));
