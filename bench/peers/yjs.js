// Yjs, two documents in one process, in memory (no provider, no disk).
//
//   node yjs.js --variant array|map --n N [--workload A,B,C]
//
// array: each update pushes its 120-byte line to a Y.Array (a log, as replog
// keeps); map: each update sets its path in a Y.Map to its 100-byte value (the
// same last-writer-per-path state replog's `set` builds). In C every update is
// its own transaction, as N separate edits would be. The documents that A and
// B start from are built (untimed) in transactions of kBuildBatch updates: the
// encoded state is byte for byte the same as after N single-update
// transactions (checked at N = 20,000 for both variants), and those take time
// quadratic in N in a Y.Array (80,000 took 36 s in a trial on this machine).
// The messages are those of Yjs's state-vector sync: a state vector, and the
// update it shows missing.
'use strict';
const Y = require('yjs');
const c = require('./common');

const usage = 'usage: node yjs.js --variant array|map --n N [--workload A,B,C]';
const argv = process.argv.slice(2);
let variant = 'array';
const vi = argv.indexOf('--variant');
if (vi >= 0) {
  variant = argv[vi + 1];
  argv.splice(vi, 2);
}
if (variant !== 'array' && variant !== 'map') c.fail('--variant: expected array or map, got ' + variant);
const opt = c.parseArgs(argv, usage);
const system = 'yjs-' + variant;
const common = { system, durable: false, transport: 'in-process' };

function edit(doc, i) {
  if (variant === 'array') doc.getArray('log').push([c.line(i)]);
  else {
    const r = c.record(i);
    doc.getMap('state').set(r.path, r.value);
  }
}

function size(doc) {
  return variant === 'array' ? doc.getArray('log').length : doc.getMap('state').size;
}

function expectedSize(n) {
  return variant === 'array' ? n : Math.min(n, c.kPaths);
}

const kBuildBatch = 1000;

function docWith(n) {
  const doc = new Y.Doc();
  for (let i = 0; i < n; i += kBuildBatch)
    doc.transact(() => {
      for (let j = i; j < Math.min(n, i + kBuildBatch); ++j) edit(doc, j);
    });
  return doc;
}

// (A) the replica sends its (empty) state vector, the source answers with
// everything it lacks.
function fresh(n) {
  const src = docWith(n);
  const dst = new Y.Doc();
  const t0 = c.now();
  const sv = Y.encodeStateVector(dst);
  const update = Y.encodeStateAsUpdate(src, sv);
  Y.applyUpdate(dst, update);
  const seconds = c.since(t0);
  if (size(dst) !== expectedSize(n)) c.fail('A: the replica holds ' + size(dst) + ' entries');
  c.report({ ...common, workload: 'A', n, updates: n, seconds, bytes: sv.length + update.length, round_trips: 1,
    notes: 'state vector + one update of ' + update.length + ' bytes; source built in transactions of ' +
      kBuildBatch + ' (untimed)' });
}

// (B) N shared, 10 new on each side, then: a -> b its state vector; b -> a
// what a lacks and b's state vector; a -> b what b lacks.
function smallDiff(n) {
  const a = docWith(n);
  const b = new Y.Doc();
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  for (let k = 0; k < c.kNewOnEachSide; ++k) {
    edit(a, n + k);
    edit(b, n + c.kNewOnEachSide + k);
  }
  const t0 = c.now();
  const svA = Y.encodeStateVector(a);                // hop 1
  const forA = Y.encodeStateAsUpdate(b, svA);        // hop 2
  const svB = Y.encodeStateVector(b);
  Y.applyUpdate(a, forA);
  const forB = Y.encodeStateAsUpdate(a, svB);        // hop 3
  Y.applyUpdate(b, forB);
  const seconds = c.since(t0);
  const want = expectedSize(n + 2 * c.kNewOnEachSide);
  if (size(a) !== want || size(b) !== want) c.fail('B: sizes ' + size(a) + ', ' + size(b) + ', expected ' + want);
  const bytes = svA.length + forA.length + svB.length + forB.length;
  c.report({ ...common, workload: 'B', n, updates: 2 * c.kNewOnEachSide, seconds, bytes, round_trips: 2,
    notes: '3 messages: a complete after hop 2, b after hop 3' });
}

// (C) N transactions on one document; bytes are the updates it emits (what a
// provider would store or send).
function append(n) {
  const doc = new Y.Doc();
  let bytes = 0;
  doc.on('update', (u) => { bytes += u.length; });
  const t0 = c.now();
  for (let i = 0; i < n; ++i) edit(doc, i);
  const seconds = c.since(t0);
  if (size(doc) !== expectedSize(n)) c.fail('C: the document holds ' + size(doc) + ' entries');
  c.report({ ...common, workload: 'C', n, updates: n, seconds, bytes,
    notes: 'in memory, nothing written to disk (no fsync); bytes: the update events emitted' });
}

for (const w of opt.workloads) {
  if (w === 'A') fresh(opt.n);
  else if (w === 'B') smallDiff(opt.n);
  else append(opt.n);
}
