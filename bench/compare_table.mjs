// Reads the lines of bench/compare.sh (the fsync line, then one median line
// per system) and prints the side-by-side table: per concurrency level, each
// system's durable steps/s and latency, Continuum's ratio to it, and its
// durability tier.
import fs from 'node:fs';

const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
const fsync = lines.find((l) => l.fsync);
const systems = lines.filter((l) => Array.isArray(l.levels));
const ours = systems.find((s) => s.peer === 'continuum');

// Power-loss safe: an fsync (or equivalent) per acknowledged commit.
function tier(config = '') {
  if (config.includes('SQLITE_SYNC=FULL') || config.startsWith('continuum')) return 'power-loss safe (fsync per commit)';
  if (config.includes('CHECKPOINTER=sqlite')) return 'process-crash safe (WAL, synchronous=NORMAL)';
  if (config.startsWith('restate')) return 'power-loss safe (RocksDB WAL fsync)';
  return 'power-loss safe (PostgreSQL fsync=on, synchronous_commit=on)';
}

if (fsync) console.log(`fsync (fdatasync, 4 KiB): p50 ${fsync.p50_ms} ms, p99 ${fsync.p99_ms} ms`);
const steps = ours?.steps_per_workflow ?? systems[0]?.steps_per_workflow;
console.log(`workflows of ${steps} durable steps, closed loop; medians of ${ours?.runs ?? '?'} runs\n`);
console.log('| system | C | steps/s | p50 ms | p99 ms | Continuum ÷ it (steps/s) | durability |');
console.log('|---|---|---|---|---|---|---|');
for (const system of systems) {
  for (const level of system.levels) {
    const mine = ours?.levels.find((l) => l.concurrency === level.concurrency);
    const ratio = mine && system !== ours ? `${(mine.steps_per_s / level.steps_per_s).toFixed(1)}×` : '';
    console.log(`| ${system.config ?? system.peer} | ${level.concurrency} | ${Math.round(level.steps_per_s)} | ` +
                `${level.p50_ms} | ${level.p99_ms} | ${ratio} | ${tier(system.config ?? system.peer)} |`);
  }
}
