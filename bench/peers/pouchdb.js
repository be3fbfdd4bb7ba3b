// PouchDB (pouchdb-node: LevelDB on disk), two processes on loopback TCP:
// a child process (this script, --server) serves its database over HTTP with
// express-pouchdb (the CouchDB replication protocol), and this process holds
// the replica and runs PouchDB's replicator.
//
//   node pouchdb.js --n N [--workload A,B,C] [--dir DIR]
//
// Each update is one new document {_id: "u<i, 9 digits>", path, value}.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');
const path = require('path');
const PouchDB = require('pouchdb-node');
const c = require('./common');

const usage = 'usage: node pouchdb.js --n N [--workload A,B,C] [--dir DIR]';
const common = { system: 'pouchdb', durable: false, transport: 'two processes tcp' };
const kBatch = 1000;  // documents per bulkDocs when building (untimed) and per replication batch

const doc = (i) => ({ _id: 'u' + String(i).padStart(9, '0'), ...c.record(i) });

async function fill(db, first, n) {
  for (let i = first; i < first + n; i += kBatch) {
    const docs = [];
    for (let j = i; j < Math.min(first + n, i + kBatch); ++j) docs.push(doc(j));
    await db.bulkDocs(docs);
  }
}

// ---- the server (child process) ---------------------------------------------------------

function server(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const express = require('express');
  const Prefixed = PouchDB.defaults({ prefix: dir + path.sep });
  const app = express();
  app.use('/', require('express-pouchdb')(Prefixed, {
    mode: 'minimumForPouchDB', inMemoryConfig: true, logPath: path.join(dir, 'log.txt') }));
  const sockets = [];
  let requests = 0;
  const db = new Prefixed('source');
  const http = app.listen(0, '127.0.0.1', () => process.send({ op: 'ready', port: http.address().port }));
  http.on('connection', (s) => sockets.push(s));
  http.on('request', () => ++requests);
  const counted = () => sockets.reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0);
  let base = { bytes: 0, requests: 0 };
  process.on('message', async (m) => {
    if (m.op === 'fill') await fill(db, m.first, m.n);
    else if (m.op === 'reset') base = { bytes: counted(), requests };
    else if (m.op === 'count') return process.send({ op: 'count', bytes: counted() - base.bytes, requests: requests - base.requests });
    else if (m.op === 'close') {
      for (const s of sockets) s.destroy();
      http.close();
      await db.close();
      process.send({ op: 'closed' });
      return process.exit(0);
    }
    process.send({ op: m.op });
  });
}

// ---- the replica (this process) ------------------------------------------------------------

async function startServer(dir) {
  const child = fork(__filename, ['--server', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = [];
  child.on('message', (m) => waiting.shift()(m));
  child.on('exit', (code) => { if (code) c.fail('the server process exited with ' + code); });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const ask = (m) => { const reply = next(); child.send(m); return reply; };
  const ready = await next();
  return { ask, url: 'http://127.0.0.1:' + ready.port + '/source' };
}

async function fresh(n, dir) {
  const s = await startServer(path.join(dir, 'server'));
  await s.ask({ op: 'fill', first: 0, n });
  const replica = new PouchDB(path.join(dir, 'replica'));
  await s.ask({ op: 'reset' });
  const t0 = c.now();
  const r = await PouchDB.replicate(s.url, replica, { batch_size: kBatch });
  const seconds = c.since(t0);
  const count = await s.ask({ op: 'count' });
  const info = await replica.info();
  if (info.doc_count !== n || !r.ok) c.fail('A: the replica holds ' + info.doc_count + ' documents');
  await replica.close();
  await s.ask({ op: 'close' });
  c.report({ ...common, workload: 'A', n, updates: n, seconds, bytes: count.bytes,
    notes: 'PouchDB.replicate from express-pouchdb over HTTP into an empty LevelDB replica, batches of ' + kBatch +
      '; ' + count.requests + ' HTTP requests; bytes: both directions at the server\'s sockets' });
}

async function smallDiff(n, dir) {
  const s = await startServer(path.join(dir, 'server'));
  await s.ask({ op: 'fill', first: 0, n });
  const replica = new PouchDB(path.join(dir, 'replica'));
  await PouchDB.replicate(s.url, replica, { batch_size: kBatch });  // the N shared, and the checkpoints
  await PouchDB.replicate(replica, s.url, { batch_size: kBatch });
  await s.ask({ op: 'fill', first: n, n: c.kNewOnEachSide });
  for (let k = 0; k < c.kNewOnEachSide; ++k) await replica.put(doc(n + c.kNewOnEachSide + k));
  await s.ask({ op: 'reset' });
  const t0 = c.now();
  await PouchDB.sync(replica, s.url, { batch_size: kBatch });
  const seconds = c.since(t0);
  const count = await s.ask({ op: 'count' });
  const info = await replica.info();
  const want = n + 2 * c.kNewOnEachSide;
  if (info.doc_count !== want) c.fail('B: the replica holds ' + info.doc_count + ' documents, expected ' + want);
  await replica.close();
  await s.ask({ op: 'close' });
  c.report({ ...common, workload: 'B', n, updates: 2 * c.kNewOnEachSide, seconds, bytes: count.bytes,
    round_trips: count.requests,
    notes: 'PouchDB.sync (both directions, one-off) from checkpoints of an earlier session; round_trips: HTTP ' +
      'requests (the two directions run concurrently)' });
}

async function append(n, dir) {
  const dbDir = path.join(dir, 'append');
  const db = new PouchDB(dbDir);
  const t0 = c.now();
  for (let i = 0; i < n; ++i) await db.put(doc(i));
  const seconds = c.since(t0);
  const info = await db.info();
  if (info.doc_count !== n) c.fail('C: the database holds ' + info.doc_count + ' documents');
  await db.close();
  c.report({ ...common, transport: 'local', workload: 'C', n, updates: n, seconds, bytes: c.dirBytes(dbDir),
    notes: 'one awaited put per document; LevelDB on disk with no fsync per write; bytes: the database directory' });
}

async function main() {
  if (process.argv[2] === '--server') return server(process.argv[3]);
  const opt = c.parseArgs(process.argv.slice(2), usage);
  await c.eachWorkload(opt, 'pouchdb', { A: fresh, B: smallDiff, C: append });
}

main().catch((e) => c.fail(e.stack || String(e)));
