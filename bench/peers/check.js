// Runs every peer script at a tiny N and checks that each prints one valid
// result line per workload (ctest: Bench.PeersScriptsPrintValidResults). It
// checks that the scripts work, never a figure.
//
//   node check.js [N]
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');

const n = Number(process.argv[2] || 200);
const scripts = [
  ['yjs-array', 'yjs.js', '--variant', 'array'],
  ['yjs-map', 'yjs.js', '--variant', 'map'],
  ['automerge', 'automerge.js'],
  ['hypercore', 'hypercore.js'],
  ['pouchdb', 'pouchdb.js'],
];
const problems = [];
for (const [system, script, ...args] of scripts) {
  let out;
  try {
    out = execFileSync(process.execPath, [path.join(__dirname, script), ...args, '--n', String(n)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60000 });
  } catch (e) {
    problems.push(system + ': exited with ' + (e.status === null ? e.signal : e.status));
    continue;
  }
  const rows = out.split('\n').filter((l) => l.trim()).map((l, k) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      problems.push(system + ': line ' + (k + 1) + ' is not JSON: ' + l.slice(0, 80));
      return null;
    }
  }).filter(Boolean);
  const workloads = rows.map((r) => r.workload).join(',');
  if (workloads !== 'A,B,C') problems.push(system + ': workloads ' + workloads + ', expected A,B,C');
  for (const r of rows) {
    const where = system + ' ' + r.workload + ': ';
    if (r.system !== system) problems.push(where + 'system is ' + r.system);
    if (r.n !== n) problems.push(where + 'n is ' + r.n);
    for (const k of ['seconds', 'updates_per_s', 'bytes'])
      if (typeof r[k] !== 'number' || !(r[k] > 0)) problems.push(where + k + ': expected a positive number, got ' + r[k]);
    if (typeof r.durable !== 'boolean') problems.push(where + 'durable: expected true or false');
    if (!['in-process', 'tcp', 'two processes tcp', 'local'].includes(r.transport))
      problems.push(where + 'transport: unexpected ' + r.transport);
    if (r.workload === 'B' && r.round_trips !== null && !(r.round_trips >= 1))
      problems.push(where + 'round_trips: expected null or at least 1, got ' + r.round_trips);
    if (typeof r.notes !== 'string') problems.push(where + 'notes: expected a string');
  }
}
if (problems.length) {
  process.stderr.write(problems.join('\n') + '\n');
  process.exit(1);
}
process.stdout.write('every peer script printed valid A, B and C results at N = ' + n + '\n');
