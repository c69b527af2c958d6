'use strict';
// A milvus:// path through the C ABI answers as a directory does. Runs
// against the server IVDB_MILVUS_URI names (the README's test command
// starts one); skipped without it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { IsccIndex, dropRemote } = require('..');

const base = (process.env.IVDB_MILVUS_URI || '').replace(/\/+$/, '');
const skip = base ? false : 'set IVDB_MILVUS_URI=milvus://HOST:PORT to run the Milvus tests';

function corpus() {
  const dir = process.env.IVDB_TESTDATA || path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'testdata');
  return fs.readFileSync(path.join(dir, 'corpus.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

function queryOf(r) {
  return r.units ? { units: r.units } : { iscc_code: r.iscc_code };
}

// The parts of a result both backends agree on (cost counters are the
// local engine's own).
function comparable(m) {
  return { matches: m.matches, instance_matches: m.instance_matches };
}

test('a milvus:// path answers as a directory', { skip }, () => {
  const uri = `${base}/node_${process.pid}_${Date.now() % 1e9}`;
  const records = corpus().slice(0, 200);
  const local = new IsccIndex(fs.mkdtempSync(path.join(os.tmpdir(), 'ivdb-node-')), { durable: false });
  const remote = new IsccIndex(uri);
  const ids = local.add(records);
  assert.deepEqual(remote.add(records), ids);
  assert.deepEqual(remote.get(ids[3]), local.get(ids[3]));
  for (const r of records.slice(0, 15)) {
    const a = local.search(queryOf(r), { count: 10, exact: true });
    const b = remote.search(queryOf(r), { count: 10, exact: true });
    assert.deepEqual(comparable(b), comparable(a), r.iscc_id);
  }
  remote.close();
  local.close();
  const view = new IsccIndex(uri, { readOnly: true });
  assert.equal(view.info().size, records.length);
  assert.throws(() => view.add(records[0]), (e) => e.code === 'IVDB_READ_ONLY');
  view.close();
  assert.throws(() => new IsccIndex(`${uri}_none`, { readOnly: true }), (e) => e.code === 'IVDB_NOT_FOUND');
  assert.throws(
    () => new IsccIndex('milvus://ann:s3cret@127.0.0.1:1/x'),
    (e) => e.code === 'IVDB_IO' && !e.message.includes('s3cret'),
  );
  // Dropped: its collections go, and it cannot be opened any more.
  assert.ok(dropRemote(uri) > 0);
  assert.equal(dropRemote(uri), 0);
  assert.throws(() => new IsccIndex(uri, { readOnly: true }), (e) => e.code === 'IVDB_NOT_FOUND');
  assert.throws(() => dropRemote(os.tmpdir()), (e) => e.code === 'IVDB_INVALID_ARGUMENT');
});
