'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { IsccIndex, IsccStore, IvdbError, explain, isccIdKey, version } = require('..');

function testdata(name) {
  const dir = process.env.IVDB_TESTDATA || path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'testdata');
  const p = path.join(dir, name);
  assert.ok(fs.existsSync(p), `test data ${p} missing: check out ../shared beside the repository or set IVDB_TESTDATA`);
  return p;
}

const corpus = fs.readFileSync(testdata('corpus.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

function queryOf(r) {
  return r.units ? { units: r.units } : { iscc_code: r.iscc_code };
}

function addAll(ix, records) {
  const ids = [];
  for (let i = 0; i < records.length; i += 500) ids.push(...ix.add(records.slice(i, i + 500)));
  return ids;
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ivdb-node-'));
}

test('corpus lifecycle: add, get, search, remove, rebuild, save, reopen', () => {
  const dir = tmpdir();
  let ix = new IsccIndex(dir, { durable: false });
  const ids = addAll(ix, corpus);
  assert.equal(ids.length, 2000);
  assert.equal(ids[0], corpus[0].iscc_id);
  const got = ix.get(ids[3]);
  assert.equal(got.iscc_id, ids[3]);
  assert.equal(got.group, corpus[3].group);
  const m = ix.search(queryOf(corpus[3]), { count: 10 });
  assert.equal(m.matches[0].score, 1);
  assert.ok(m.matches.some((x) => x.iscc_id === ids[3]));
  const batch = ix.searchBatch([queryOf(corpus[0]), queryOf(corpus[1])], { count: 3, exact: true });
  assert.equal(batch.length, 2);
  assert.ok(ix.remove(ids[3]) > 0);
  assert.throws(() => ix.get(ids[3]), (e) => e instanceof IvdbError && e.code === 'IVDB_NOT_FOUND');
  ix.rebuild();
  ix.save();
  assert.equal(ix.info().size, 1999);
  ix.close();
  ix.close(); // twice is fine
  assert.throws(() => ix.search(queryOf(corpus[0])), (e) => e.code === 'IVDB_CLOSED');
  ix = new IsccIndex(dir);
  assert.throws(() => new IsccIndex(dir), (e) => e.code === 'IVDB_LOCKED');
  assert.ok(ix.search(queryOf(corpus[5])).matches.length > 0);
  ix.close();
  const ro = new IsccIndex(dir, { readOnly: true });
  assert.throws(() => ro.add(corpus[0]), (e) => e.code === 'IVDB_READ_ONLY');
  assert.equal(ro.info().size, 1999);
  ro.close();
});

test('granular features: chunk matches with segments, a batch with its own options, more like this', async () => {
  const ix = new IsccIndex(null, { durable: false });
  const sets = [['AAAAAAAAAAE', 'AAAAAAAAAAc'], ['AAAAAAAAAAc'], ['__________8']];
  const entries = corpus.slice(0, 3).map((r, i) => ({
    ...r,
    features: [{ maintype: 'content', subtype: 'text', simprints: sets[i], offsets: [i * 100, 50].slice(0, sets[i].length) }],
  }));
  ix.add(entries);
  const q = { features: [{ maintype: 'content', subtype: 'text', simprints: ['AAAAAAAAAAc'] }] };
  const m = ix.search(q, { detail: true, simprintThreshold: 0.99 });
  assert.equal(m.chunk_matches.length, 2);
  const offsets = Object.fromEntries(m.chunk_matches.map((c) => [c.iscc_id, c.types['CONTENT-TEXT-V0'].chunks[0].offset]));
  assert.deepEqual(offsets, { [corpus[0].iscc_id]: 50, [corpus[1].iscc_id]: 100 });
  assert.ok(m.chunk_matches.every((c) => c.score === 1 && c.types['CONTENT-TEXT-V0'].chunks[0].freq === 2));
  const b = await ix.searchBatchAsync([q, { iscc_id: corpus[0].iscc_id }], { simprintThreshold: 0.99 });
  assert.equal(b.length, 2);
  assert.equal(b[0].chunk_matches[0].types['CONTENT-TEXT-V0'].chunks, undefined);
  assert.deepEqual(b[1].chunk_matches.map((c) => c.iscc_id), [corpus[1].iscc_id]);
  assert.throws(
    () => ix.search({ features: [{ maintype: 'content', subtype: 'text', simprints: ['AAAA'] }] }),
    (e) => e.code === 'IVDB_INVALID_ARGUMENT' && /features\[0\]/.test(e.message),
  );
  ix.close();
});

test('error codes and messages for bad input', () => {
  const ix = new IsccIndex(null);
  ix.add({ iscc_id: 'ISCC:MAIGGGMBT3LBUEH7', units: ['ISCC:GAA7KNIMBHNQRM35'] });
  const cases = [
    [{ iscc_code: 'ISCC:NOTVALID' }, 'IVDB_INVALID_ISCC', 'entries[0].iscc_code'],
    [{ title: 'x' }, 'IVDB_INVALID_ARGUMENT', 'neither iscc_code nor units'],
    [{ units: [] }, 'IVDB_INVALID_ARGUMENT', 'empty units'],
    [{ iscc_id: 'ISCC:MEIGGGMBT3LBUEH7', units: ['ISCC:GAA7KNIMBHNQRM35'] }, 'IVDB_WRONG_REALM', 'realm'],
  ];
  for (const [entry, code, needle] of cases) {
    assert.throws(() => ix.add(entry), (e) => e instanceof IvdbError && e.code === code && e.message.includes(needle),
      JSON.stringify(entry));
  }
  assert.throws(() => ix.get('ISCC:MAIGGGMBT3X4AMH7'), (e) => e.code === 'IVDB_NOT_FOUND');
  assert.throws(() => explain('ISCC:AAA'), (e) => e.code === 'IVDB_INVALID_ISCC');
  assert.equal(explain('ISCC:MAIGGGMBT3LBUEH7').kind, 'id');
  assert.match(version(), /^\d+\.\d+\.\d+/);
  ix.close();
});

test('parallel async calls', async () => {
  const ix = new IsccIndex(null);
  addAll(ix, corpus.slice(0, 1000));
  const searches = [];
  for (let i = 0; i < 200; i++) searches.push(ix.searchAsync(queryOf(corpus[i]), { count: 5 }));
  const adds = [];
  for (let i = 1000; i < 2000; i += 100) adds.push(ix.addAsync(corpus.slice(i, i + 100)));
  const results = await Promise.all(searches);
  assert.ok(results.every((m) => m.matches.length > 0));
  await Promise.all(adds);
  assert.equal(ix.info().size, 2000);
  // Closing with calls in flight waits for them.
  const late = ix.searchAsync(queryOf(corpus[7]));
  const closed = ix.closeAsync();
  assert.ok((await late).matches.length > 0);
  await closed;
  await assert.rejects(ix.getAsync(corpus[0].iscc_id), (e) => e.code === 'IVDB_CLOSED');
});

test('results equal the Rust engine\'s (fixture from tests/binding_fixture.rs)', () => {
  const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'search_expected.json'), 'utf8'));
  const ix = new IsccIndex(null);
  addAll(ix, corpus);
  fixture.queries.forEach((q, i) => {
    const got = ix.search(q, { count: fixture.count, exact: true });
    assert.deepEqual(got, fixture.results[i], `query ${i}`);
  });
  ix.close();
});

test('close() with calls in flight never leaves an unhandled rejection', async () => {
  const dir = tmpdir();
  const ix = new IsccIndex(dir, {});
  addAll(ix, corpus.slice(0, 200));
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const warned = new Promise((resolve) => {
    process.once('warning', (w) => resolve(w));
  });
  const pending = ix.searchAsync(queryOf(corpus[0]));
  // The directory goes away under the index: the save in close fails.
  fs.rmSync(dir, { recursive: true, force: true });
  const closing = ix.close();
  assert.ok(closing instanceof Promise, 'close() with a call in flight returns its promise');
  await pending;
  const warning = await warned;
  assert.equal(warning.code, 'IVDB_CLOSE_FAILED');
  assert.match(warning.message, /closing the index failed/);
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, []);
  await assert.rejects(closing);
});

test('upkeep: copy, compact, rebuildUnitTypes, refresh', async () => {
  const dir = tmpdir();
  // Small shards: removals leave rows in sealed shards for compact().
  const ix = new IsccIndex(dir, { shard_size: 16 << 10 });
  const ids = addAll(ix, corpus.slice(0, 1500));
  ix.save();
  const twin = ix.copy();
  assert.ok(twin.remove(ids.slice(0, 100)) > 0);
  assert.equal(twin.info().size, 1400);
  assert.equal(ix.info().size, 1500);
  twin.close();
  ix.remove(ids.slice(200, 500));
  assert.ok((await ix.compactAsync()) > 0);
  ix.rebuildUnitTypes(['META-NONE-V0']);
  assert.throws(() => ix.rebuildUnitTypes(['NO-SUCH-TYPE']), (e) => e.code === 'IVDB_INVALID_ISCC');
  assert.equal(ix.refresh(), false);
  assert.ok(ix.search(queryOf(corpus[600]), { count: 20 }).matches.length > 0);
  ix.close();
});

test('the partition mode is an open option; a bad one is refused naming it', () => {
  for (const partition of ['auto', 'always', 'off']) {
    const ix = new IsccIndex(tmpdir(), { partition });
    addAll(ix, corpus.slice(0, 50));
    ix.close();
  }
  assert.throws(
    () => new IsccIndex(tmpdir(), { partition: 'sometimes' }),
    (e) => e instanceof IvdbError && /partition/.test(e.message),
  );
});

test('IsccStore: writes an index opened afterwards searches; keys as BigInt; the lock', () => {
  const dir = tmpdir();
  const records = corpus.slice(0, 100);
  const store = new IsccStore(dir, { durable: false });
  for (const r of records) assert.equal(store.put(isccIdKey(r.iscc_id), r), r.iscc_id);
  const keys = [];
  for (let from = 0n; ;) {
    const page = store.entries(from, 30);
    if (page.length === 0) break;
    keys.push(...page.map((p) => p.key));
    from = page[page.length - 1].key + 1n;
  }
  const want = records.map((r) => isccIdKey(r.iscc_id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(keys, want);
  const gone = isccIdKey(records[0].iscc_id);
  assert.equal(store.delete(gone), true);
  assert.equal(store.delete(gone), false);
  assert.throws(() => store.get(gone), (e) => e instanceof IvdbError && e.code === 'IVDB_NOT_FOUND');
  store.putMetadata('owner', { n: 1 });
  assert.deepEqual(store.getMetadata('owner'), { n: 1 });
  assert.equal(store.info().journal_pending, 101);
  assert.throws(() => store.put(gone, { title: 'x' }), (e) => e.code === 'IVDB_INVALID_ARGUMENT');
  assert.throws(() => isccIdKey('ISCC:AAA'), (e) => e.code === 'IVDB_INVALID_ISCC');
  assert.throws(() => new IsccIndex(dir, {}), (e) => e.code === 'IVDB_LOCKED');
  store.close();
  assert.throws(() => store.get(gone), (e) => e.code === 'IVDB_CLOSED');
  const ix = new IsccIndex(dir, {});
  assert.throws(() => ix.get(records[0].iscc_id), (e) => e.code === 'IVDB_NOT_FOUND');
  for (const r of records.slice(1, 20)) {
    const m = ix.search(queryOf(r), { count: 20 });
    assert.ok(m.matches.some((x) => x.iscc_id === r.iscc_id), `${r.iscc_id} not found`);
  }
  ix.close();
});
