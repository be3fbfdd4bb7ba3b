// What every peer script shares: the command line, the payload generator and
// the one JSON line each workload prints.
//
//   node SCRIPT --n N [--workload A,B,C] [--dir DIR]
//
// The payload is replog's own benchmark workload (bench/common/workload.cc):
// update i sets path "bench.p<i mod 10000>" to a 100-byte string
// "value-<i>-xxx...". Systems that store a record take {path, value}; systems
// that store bytes take the line "<path> <value>" padded with 'x' to 120 bytes.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const kPaths = 10000;
const kLineBytes = 120;
const kNewOnEachSide = 10;  // workload B

function record(i) {
  return { path: 'bench.p' + (i % kPaths), value: ('value-' + i + '-').padEnd(100, 'x') };
}

function line(i) {
  const r = record(i);
  return (r.path + ' ' + r.value).padEnd(kLineBytes, 'x');
}

function parseArgs(argv, usage) {
  const opt = { n: 200, workloads: ['A', 'B', 'C'], dir: os.tmpdir() };
  for (let k = 0; k < argv.length; ++k) {
    const a = argv[k];
    const next = () => {
      if (k + 1 >= argv.length) fail(a + ' needs a value');
      return argv[++k];
    };
    if (a === '--n') opt.n = positive(next(), '--n');
    else if (a === '--workload') opt.workloads = next().split(',').map((w) => w.toUpperCase());
    else if (a === '--dir') opt.dir = next();
    else if (a === '--help' || a === '-h') {
      process.stdout.write(usage + '\n');
      process.exit(0);
    } else fail('unknown option ' + a + '\n' + usage);
  }
  for (const w of opt.workloads) if (!['A', 'B', 'C'].includes(w)) fail('--workload: unknown workload ' + w);
  return opt;
}

function positive(text, what) {
  const v = Number(text);
  if (!Number.isInteger(v) || v <= 0) fail(what + ': expected a positive integer, got ' + text);
  return v;
}

function fail(message) {
  process.stderr.write(path.basename(process.argv[1]) + ': ' + message + '\n');
  process.exit(1);
}

// Seconds since t0 (from now()).
const now = () => process.hrtime.bigint();
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

// A new empty directory under `parent`; removed by the caller.
function tempDir(parent, name) {
  return fs.mkdtempSync(path.join(parent, 'peers-' + name + '-'));
}

function dirBytes(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

// Prints one result line. `fields`: system, workload, n, seconds, bytes,
// round_trips (B; null where the protocol does not show them), durable,
// transport, notes; updates_per_s is derived.
function report(fields) {
  const row = {
    system: fields.system,
    workload: fields.workload,
    n: fields.n,
    seconds: fields.seconds,
    updates_per_s: fields.updates / fields.seconds,
    bytes: fields.bytes,
    round_trips: fields.round_trips === undefined ? null : fields.round_trips,
    durable: fields.durable,
    transport: fields.transport,
    notes: fields.notes,
  };
  process.stdout.write(JSON.stringify(row) + '\n');
}

// Runs each workload asked for ('A', 'B', 'C' -> run.A(n, dir), ...) in a
// temporary directory of its own, removed after.
async function eachWorkload(opt, name, run) {
  for (const w of opt.workloads) {
    const dir = tempDir(opt.dir, name);
    try {
      await run[w](opt.n, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

module.exports = {
  kPaths, kLineBytes, kNewOnEachSide, record, line, parseArgs, fail, now, since, tempDir, dirBytes, report, eachWorkload,
};
