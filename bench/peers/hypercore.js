// Hypercore, two processes on loopback TCP, each core on disk: this process
// holds the writer, a child process (this script, --replica) the replica.
// Each core replicates over its own TCP connection (Hypercore's replication
// stream: Noise-encrypted, signed Merkle tree).
//
//   node hypercore.js --n N [--workload A,B,C] [--dir DIR]
//
// Each update is one block, its 120-byte line.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const Hypercore = require('hypercore');
const c = require('./common');

const usage = 'usage: node hypercore.js --n N [--workload A,B,C] [--dir DIR]';
const system = 'hypercore';
const common = { system, durable: false, transport: 'two processes tcp' };
const kBatch = 1000;  // blocks per append when building a core (untimed)

const block = (i) => Buffer.from(c.line(i));

async function coreWith(dir, n, first = 0) {
  const core = new Hypercore(dir);
  await core.ready();
  for (let i = first; i < first + n; i += kBatch) {
    const blocks = [];
    for (let j = i; j < Math.min(first + n, i + kBatch); ++j) blocks.push(block(j));
    await core.append(blocks);
  }
  return core;
}

// Serves `core` to every connection; the sockets are kept to count bytes.
function serve(core) {
  const sockets = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const stream = core.replicate(false);
    socket.pipe(stream).pipe(socket);
    stream.on('error', () => {});
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, sockets, port: server.address().port })));
}

// Connects `core` to the server at `port`.
function connect(core, port) {
  const socket = net.connect(port, '127.0.0.1');
  const stream = core.replicate(true);
  socket.pipe(stream).pipe(socket);
  stream.on('error', () => {});
  socket.on('error', () => {});
  return socket;
}

const socketBytes = (sockets) => sockets.reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0);

// ---- the replica (child process) ---------------------------------------------------

async function replica() {
  const msg = (m) => process.send(m);
  let x = null, y = null, xSocket = null, ySocket = null;
  process.on('message', async (m) => {
    if (m.op === 'fresh') {  // A: download the whole core
      x = new Hypercore(path.join(m.dir, 'replica-x'), Buffer.from(m.key, 'hex'));
      await x.ready();
      const t0 = c.now();
      xSocket = connect(x, m.port);
      await x.download({ start: 0, end: m.n }).done();
      const seconds = c.since(t0);
      if (x.contiguousLength !== m.n) c.fail('A: the replica holds ' + x.contiguousLength + ' blocks');
      msg({ op: 'fresh', seconds, bytes: xSocket.bytesRead + xSocket.bytesWritten });
    } else if (m.op === 'own') {  // B: a core of our own, for the writer to replicate
      y = new Hypercore(path.join(m.dir, 'replica-y'));
      await y.ready();
      msg({ op: 'own', key: y.key.toString('hex') });
    } else if (m.op === 'connect-y') {
      ySocket = connect(y, m.port);
      msg({ op: 'connected' });
    } else if (m.op === 'disconnect') {
      xSocket.destroy();
      ySocket.destroy();
      msg({ op: 'disconnected' });
    } else if (m.op === 'append') {
      for (let i = m.first; i < m.first + m.count; ++i) await y.append(block(i));
      msg({ op: 'appended' });
    } else if (m.op === 'reconnect') {  // B: the 10 new blocks of x, timed from here
      const t0 = c.now();
      xSocket = connect(x, m.xPort);
      ySocket = connect(y, m.yPort);
      await x.download({ start: 0, end: m.xLength }).done();
      msg({ op: 'reconnected', t0: t0.toString(), done: c.now().toString(),
        bytes: xSocket.bytesRead + xSocket.bytesWritten + ySocket.bytesRead + ySocket.bytesWritten });
    } else if (m.op === 'close') {
      for (const s of [xSocket, ySocket]) if (s) s.destroy();
      for (const core of [x, y]) if (core) await core.close();
      msg({ op: 'closed' });
      process.exit(0);
    }
  });
  msg({ op: 'ready' });
}

// ---- the writer (this process) -------------------------------------------------------

function startReplica() {
  const child = fork(__filename, ['--replica'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = [];
  child.on('message', (m) => waiting.shift()(m));
  child.on('exit', (code) => { if (code) c.fail('the replica process exited with ' + code); });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const ask = (m) => { const reply = next(); child.send(m); return reply; };
  return next().then(() => ({ ask, child }));
}

async function fresh(n, dir) {
  const core = await coreWith(path.join(dir, 'writer-x'), n);
  const served = await serve(core);
  const r = await startReplica();
  const res = await r.ask({ op: 'fresh', dir, key: core.key.toString('hex'), port: served.port, n });
  await r.ask({ op: 'close' });
  served.server.close();
  for (const s of served.sockets) s.destroy();
  await core.close();
  c.report({ ...common, workload: 'A', n, updates: n, seconds: res.seconds, bytes: res.bytes,
    notes: 'replica in a child process, timed from its connect to the last block stored; ' +
      'bytes: both directions of the TCP stream; writer built with appends of ' + kBatch + ' blocks (untimed)' });
}

async function smallDiff(n, dir) {
  const x = await coreWith(path.join(dir, 'writer-x'), n);
  const xServed = await serve(x);
  const r = await startReplica();
  await r.ask({ op: 'fresh', dir, key: x.key.toString('hex'), port: xServed.port, n });  // the N shared
  const own = await r.ask({ op: 'own', dir });
  const y = new Hypercore(path.join(dir, 'writer-y'), Buffer.from(own.key, 'hex'));
  await y.ready();
  const yServed = await serve(y);
  await r.ask({ op: 'connect-y', port: yServed.port });
  await r.ask({ op: 'disconnect' });
  for (const s of [...xServed.sockets, ...yServed.sockets]) s.destroy();
  for (let k = 0; k < c.kNewOnEachSide; ++k) await x.append(block(n + k));
  await r.ask({ op: 'append', first: n + c.kNewOnEachSide, count: c.kNewOnEachSide });
  // The writer's side: y's 10 new blocks, downloaded once the replica reconnects.
  const yDone = y.download({ start: 0, end: c.kNewOnEachSide }).done().then(() => c.now());
  const res = await r.ask({ op: 'reconnect', xPort: xServed.port, yPort: yServed.port, xLength: n + c.kNewOnEachSide });
  const writerDone = await yDone;
  const t0 = BigInt(res.t0);
  const done = BigInt(res.done) > writerDone ? BigInt(res.done) : writerDone;
  const seconds = Number(done - t0) / 1e9;
  await r.ask({ op: 'close' });
  xServed.server.close();
  yServed.server.close();
  for (const s of [...xServed.sockets, ...yServed.sockets]) s.destroy();
  await x.close();
  await y.close();
  c.report({ ...common, workload: 'B', n, updates: 2 * c.kNewOnEachSide, seconds, bytes: res.bytes, round_trips: null,
    notes: 'single-writer cores: the N shared and 10 new in the writer\'s core, 10 new in the replica\'s own core; ' +
      'two TCP connections (one per core), new since the last session; timed from reconnecting until both sides ' +
      'hold all 20 (one monotonic clock for both processes); round trips are inside the protocol, not counted' });
}

async function append(n, dir) {
  const coreDir = path.join(dir, 'append');
  const core = new Hypercore(coreDir);
  await core.ready();
  const t0 = c.now();
  for (let i = 0; i < n; ++i) await core.append(block(i));
  const seconds = c.since(t0);
  if (core.length !== n) c.fail('C: the core holds ' + core.length + ' blocks');
  await core.close();
  c.report({ ...common, transport: 'local', workload: 'C', n, updates: n, seconds, bytes: c.dirBytes(coreDir),
    notes: 'one awaited append per block, each signed; on disk (RocksDB) with no fsync per append; ' +
      'bytes: the storage directory' });
}

async function main() {
  if (process.argv[2] === '--replica') return replica();
  const opt = c.parseArgs(process.argv.slice(2), usage);
  await c.eachWorkload(opt, 'hypercore', { A: fresh, B: smallDiff, C: append });
}

main().catch((e) => c.fail(e.stack || String(e)));
