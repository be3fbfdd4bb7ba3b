// Automerge, two documents in one process, in memory, synced by Automerge's
// own sync protocol (generateSyncMessage / receiveSyncMessage), the messages
// handed over in turn, a to b first.
//
//   node automerge.js --n N [--workload A,B,C]
//
// Each update is its own change (one push and one commit), pushing its
// 120-byte line to the list `log`. The changes are made on the document's
// engine (A.getBackend: push, commit), as the proxy API (A.change) slows down
// with the length of the list: 20,000 changes through it took 191 s in a trial
// on this machine. Syncing goes through the public API, on a document loaded
// from the engine's save.
'use strict';
const A = require('@automerge/automerge');
const c = require('./common');

const opt = c.parseArgs(process.argv.slice(2), 'usage: node automerge.js --n N [--workload A,B,C]');
const common = { system: 'automerge', durable: false, transport: 'in-process' };

// An engine holding the list `log` and the updates [0, n), one change each.
function engineWith(n) {
  const engine = A.getBackend(A.change(A.init(), (d) => { d.log = []; })).fork();
  const log = engine.get('_root', 'log');
  for (let i = 0; i < n; ++i) {
    engine.push(log, c.line(i));
    engine.commit();
  }
  return engine;
}

function docWith(n) {
  return A.load(engineWith(n).save());
}

// Syncs two peers {doc, state} until neither has a message; returns the
// messages, their bytes and the hop after which each side held `want` entries.
function sync(a, b, want) {
  const out = { messages: 0, bytes: 0, hops: 0, doneA: -1, doneB: -1 };
  let from = a, to = b, quiet = 0;
  while (quiet < 2) {
    const [state, msg] = A.generateSyncMessage(from.doc, from.state);
    from.state = state;
    if (msg === null) {
      ++quiet;
    } else {
      quiet = 0;
      ++out.hops;
      ++out.messages;
      out.bytes += msg.length;
      [to.doc, to.state] = A.receiveSyncMessage(to.doc, to.state, msg);
      if (out.doneA < 0 && (a.doc.log ? a.doc.log.length : 0) === want) out.doneA = out.hops;
      if (out.doneB < 0 && (b.doc.log ? b.doc.log.length : 0) === want) out.doneB = out.hops;
    }
    [from, to] = [to, from];
  }
  return out;
}

function fresh(n) {
  const a = { doc: docWith(n), state: A.initSyncState() };
  const b = { doc: A.init(), state: A.initSyncState() };
  const t0 = c.now();
  const s = sync(a, b, n);
  const seconds = c.since(t0);
  if (s.doneB < 0) c.fail('A: the replica holds ' + (b.doc.log ? b.doc.log.length : 0) + ' entries');
  c.report({ ...common, workload: 'A', n, updates: n, seconds, bytes: s.bytes, round_trips: Math.ceil(s.doneB / 2),
    notes: s.messages + ' sync messages; source built with ' + n + ' changes (untimed)' });
}

// N shared (synced before, untimed; both keep the sync state of that session),
// then 10 new changes on each side.
function smallDiff(n) {
  const a = { doc: docWith(n), state: A.initSyncState() };
  const b = { doc: A.init(), state: A.initSyncState() };
  sync(a, b, n);
  for (let k = 0; k < c.kNewOnEachSide; ++k) {
    a.doc = A.change(a.doc, (d) => { d.log.push(c.line(n + k)); });
    b.doc = A.change(b.doc, (d) => { d.log.push(c.line(n + c.kNewOnEachSide + k)); });
  }
  const want = n + 2 * c.kNewOnEachSide;
  const t0 = c.now();
  const s = sync(a, b, want);
  const seconds = c.since(t0);
  if (s.doneA < 0 || s.doneB < 0) c.fail('B: the exchange ended before both held ' + want + ' entries');
  c.report({ ...common, workload: 'B', n, updates: 2 * c.kNewOnEachSide, seconds, bytes: s.bytes,
    round_trips: Math.ceil(Math.max(s.doneA, s.doneB) / 2),
    notes: s.messages + ' sync messages: a complete after hop ' + s.doneA + ', b after hop ' + s.doneB +
      '; both kept the sync state of the session that shared the N' });
}

// N changes on one engine; bytes: its save.
function append(n) {
  const t0 = c.now();
  const engine = engineWith(n);
  const seconds = c.since(t0);
  const length = engine.length(engine.get('_root', 'log'));
  if (length !== n) c.fail('C: the document holds ' + length + ' entries');
  const bytes = engine.save().length;
  c.report({ ...common, workload: 'C', n, updates: n, seconds, bytes,
    notes: 'in memory, nothing written to disk (no fsync); one push + commit on the engine per update; ' +
      'bytes: the saved document (untimed)' });
}

for (const w of opt.workloads) {
  if (w === 'A') fresh(opt.n);
  else if (w === 'B') smallDiff(opt.n);
  else append(opt.n);
}
