// The rpc lab's check `jayson`: jayson's TCP client (one connection per call, one JSON text
// per line) against the student's rpc-server. Usage: node jayson.js PORT
// Prints `ok` and exits 0, or prints one line `FAIL: ...` (what was sent, what came back,
// what was expected) and exits 1.
'use strict';
const jayson = require('jayson');

const port = Number(process.argv[2]);
const client = jayson.client.tcp({ host: '127.0.0.1', port });

function call(method, params, id) {
  return new Promise((resolve, reject) => {
    const cb = (err, response) => (err ? reject(err) : resolve(response));
    if (id === undefined) client.request(method, params, cb);
    else client.request(method, params, id, cb);
  });
}

function batch(requests) {
  return new Promise((resolve, reject) => {
    client.request(requests, (err, responses) => (err ? reject(err) : resolve(responses)));
  });
}

const show = (v) => JSON.stringify(v);
function fail(what, got, expected) {
  throw new Error(`${what}: the reply was ${show(got)}; expected ${expected}`);
}

async function expectResult(method, params, expected) {
  const r = await call(method, params);
  const what = `${method} ${show(params)}`;
  if (!r || typeof r !== 'object') fail(what, r, `a response object with "result": ${show(expected)}`);
  if (r.error) fail(what, r, `"result": ${show(expected)}`);
  if (show(r.result) !== show(expected) && !(typeof expected === 'number' && r.result === expected)) {
    fail(what, r, `"result": ${show(expected)}`);
  }
  return r;
}

async function expectError(method, params, code) {
  const r = await call(method, params);
  const what = `${method} ${show(params)}`;
  if (!r || !r.error || r.error.code !== code) fail(what, r, `an error object with "code": ${code}`);
  if (typeof r.error.message !== 'string') fail(what, r, 'an error object with a string "message"');
}

async function main() {
  await expectResult('add', [1, 2], 3);
  await expectResult('add', { a: 2.5, b: 4 }, 6.5);
  await expectResult('kv.put', ['lang', { name: 'rust', year: 2015 }], null);
  await expectResult('kv.get', { key: 'lang' }, { name: 'rust', year: 2015 });
  await expectResult('kv.get', ['missing'], null);
  await expectResult('counter.incr', [], 1);
  const named = await call('add', [20, 22], 'my-id');
  if (!named || named.id !== 'my-id') fail('add [20, 22] with the id "my-id"', named, 'the same id in the reply');
  await expectError('multiply', [2, 3], -32601);
  await expectError('add', ['x', 1], -32602);
  await expectError('kv.get', {}, -32602);

  const sent = [
    client.request('add', [1, 1]),
    client.request('counter.incr', [], null), // a notification: no reply in the batch
    client.request('no.such.method', []),
    client.request('counter.incr', []),
  ];
  const replies = await batch(sent);
  const what = `the batch ${show(sent)}`;
  if (!Array.isArray(replies)) fail(what, replies, 'an array of replies on one line');
  if (replies.length !== 3) fail(what, replies, 'three replies (none for the notification)');
  const byId = new Map(replies.map((r) => [r && r.id, r]));
  const [add, , nope, incr] = sent;
  if (!byId.get(add.id) || byId.get(add.id).result !== 2) fail(what, replies, `"result": 2 for id ${add.id}`);
  const e = byId.get(nope.id);
  if (!e || !e.error || e.error.code !== -32601) fail(what, replies, `"code": -32601 for id ${nope.id}`);
  if (!byId.get(incr.id) || byId.get(incr.id).result !== 3) {
    fail(what, replies, `"result": 3 for id ${incr.id} (the counter was 1, and the notification counted too)`);
  }

  // A notification alone: jayson writes it and closes; it must still run.
  await call('kv.put', ['note', 'ran'], null);
  const deadline = Date.now() + 3000;
  for (;;) {
    const r = await call('kv.get', ['note']);
    if (r && r.result === 'ran') break;
    if (Date.now() > deadline) fail('kv.get ["note"] after the notification kv.put ["note", "ran"]', r, '"result": "ran" (a notification runs, it only gets no reply)');
  }
}

main().then(
  () => {
    console.log('ok');
    // Every call is done. jayson ends its side of each connection and node would wait for
    // the server to close its side before exiting: whether the server gives back finished
    // connections is judged by the items on resources, not by this one.
    process.exit(0);
  },
  (err) => {
    console.log(`FAIL: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
