/* C test of the low-level index ABI. The sharded index (ivdb_sharded_*):
 * 64-bit keys with NPHD vectors and 128-bit keys with Hamming vectors; add,
 * upsert, remove, get, count, search (single, batch, prefix queries),
 * maintenance, iteration, reopen read-only, error paths. The unit index
 * (ivdb_unit_*): new, add, search, get, rows, save, restore, view, load,
 * copy, reset, errors. The bloom filter (ivdb_bloom_*). Every free with
 * NULL. Exits non-zero when a check
 * failed. Usage: ffi_lowlevel EMPTY_DIR */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscc_vdb.h"

static int failures = 0;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* A call that must succeed; prints the error otherwise. Calls pass `&e_`
 * (declared here) as their error slot. */
#define OK(call)                                                              \
    do {                                                                      \
        ivdb_error *e_ = NULL;                                                \
        ivdb_status s_ = (call);                                              \
        CHECK(s_ == IVDB_OK, "%s: %s", ivdb_status_str(s_),                   \
              e_ ? ivdb_error_message(e_) : "");                              \
        ivdb_error_free(e_);                                                  \
    } while (0)

static void expect_error(ivdb_status status, ivdb_error *err, ivdb_status want,
                         const char *needle, const char *what) {
    CHECK(status == want, "%s: got %s, want %s", what, ivdb_status_str(status),
          ivdb_status_str(want));
    CHECK(err != NULL, "%s: no error object", what);
    if (err != NULL) {
        CHECK(strstr(ivdb_error_message(err), needle) != NULL,
              "%s: message \"%s\" lacks \"%s\"", what, ivdb_error_message(err),
              needle);
        ivdb_error_free(err);
    }
}

static uint64_t state = 42;
static uint8_t next_byte(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint8_t)(state >> 56);
}

#define N 1000
#define BYTES 8

static void nphd_u64(const char *dir) {
    ivdb_sharded *idx = NULL;
    ivdb_error *err = NULL;
    ivdb_status st;

    /* Bad options: nothing is created. */
    st = ivdb_sharded_open(dir, "{\"shard_sise\": 4096}", &idx, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "unknown option \"shard_sise\"",
                 "misspelt option");
    CHECK(idx == NULL, "handle written on failure");
    err = NULL;
    st = ivdb_sharded_open(dir, "{\"keys\": \"u32\"}", &idx, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "keys", "bad key kind");
    err = NULL;
    st = ivdb_sharded_open(dir, "{\"vectors\": {\"kind\": \"nphd\", \"max_dim\": 100}}", &idx, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "max_dim 100", "bad max_dim");

    OK(ivdb_sharded_open(dir, "{\"shard_size\": 16384, \"merge_factor\": 0}", &idx, &e_));
    if (idx == NULL) return;
    CHECK(ivdb_sharded_key_bytes(idx) == 8, "key bytes %zu", ivdb_sharded_key_bytes(idx));

    static uint64_t keys[N];
    static uint8_t vectors[N * BYTES];
    static size_t lengths[N];
    for (size_t i = 0; i < N; i++) {
        keys[i] = i + 1;
        lengths[i] = BYTES;
        for (size_t b = 0; b < BYTES; b++) vectors[i * BYTES + b] = next_byte();
    }
    size_t added = 0;
    OK(ivdb_sharded_add(idx, (const uint8_t *)keys, vectors, lengths, N, &added, &e_));
    CHECK(added == N, "added %zu", added);
    OK(ivdb_sharded_add(idx, (const uint8_t *)keys, vectors, lengths, N, &added, &e_));
    CHECK(added == 0, "re-added %zu", added);
    size_t len = 0;
    OK(ivdb_sharded_len(idx, &len, &e_));
    CHECK(len == N, "len %zu", len);
    /* Generated keys start at len() = N, which is in use (keys 1..N): N + 1
     * and N + 2; removed again so the checks below see keys 1..N. */
    uint64_t gen[2] = {0, 0};
    OK(ivdb_sharded_add_generated(idx, vectors, lengths, 2, gen, &e_));
    CHECK(gen[0] == N + 1 && gen[1] == N + 2, "generated %llu %llu",
          (unsigned long long)gen[0], (unsigned long long)gen[1]);
    OK(ivdb_sharded_remove(idx, (const uint8_t *)gen, 2, NULL, &e_));

    /* count and get: a live key and a missing one. */
    uint64_t probe[2] = {7, 5000};
    size_t counts[2] = {9, 9};
    OK(ivdb_sharded_count(idx, (const uint8_t *)probe, 2, counts, &e_));
    CHECK(counts[0] == 1 && counts[1] == 0, "counts %zu %zu", counts[0], counts[1]);
    ivdb_rows *rows = NULL;
    OK(ivdb_sharded_get(idx, (const uint8_t *)probe, 2, &rows, &e_));
    if (rows) {
        CHECK(rows->len == 2 && rows->key_bytes == 8, "rows %zu", rows->len);
        CHECK(rows->lengths[0] == BYTES && rows->lengths[1] == 0, "lengths %zu %zu",
              rows->lengths[0], rows->lengths[1]);
        CHECK(memcmp(rows->bytes + rows->offsets[0], vectors + 6 * BYTES, BYTES) == 0,
              "vector of key 7");
        uint64_t k0;
        memcpy(&k0, rows->keys, 8);
        CHECK(k0 == 7, "row key %llu", (unsigned long long)k0);
    }
    ivdb_rows_free(rows);

    /* Exact search: each query finds its own vector first, at distance 0;
     * a 128-bit query whose first 64 bits are a stored code matches it at
     * 0 over the common prefix. */
    uint8_t queries[BYTES * 2 + 16];
    size_t qlen[3] = {BYTES, BYTES, 16};
    memcpy(queries, vectors + 10 * BYTES, BYTES);
    memcpy(queries + BYTES, vectors + 20 * BYTES, BYTES);
    memcpy(queries + 2 * BYTES, vectors + 30 * BYTES, BYTES);
    memset(queries + 3 * BYTES, 0xA5, 8);
    ivdb_search_options opts = {5, 1, 0, -1.0f, 0};
    ivdb_hits *hits = NULL;
    OK(ivdb_sharded_search(idx, queries, qlen, 3, &opts, &hits, &e_));
    if (hits) {
        CHECK(hits->queries == 3 && hits->key_bytes == 8, "queries %zu", hits->queries);
        const uint64_t want[3] = {11, 21, 31};
        for (size_t q = 0; q < hits->queries; q++) {
            CHECK(hits->counts[q] == 5, "query %zu: %zu hits", q, hits->counts[q]);
            /* What the search cost: at least the 5 rows it returned. */
            CHECK(hits->visited[q] >= 5 && hits->computed[q] >= 5, "query %zu: visited %llu", q,
                  (unsigned long long)hits->visited[q]);
            uint64_t k;
            memcpy(&k, hits->keys + hits->offsets[q] * 8, 8);
            CHECK(k == want[q], "query %zu: first key %llu", q, (unsigned long long)k);
            CHECK(hits->distances[hits->offsets[q]] == 0.0f, "query %zu: distance %f", q,
                  hits->distances[hits->offsets[q]]);
            for (size_t j = 1; j < hits->counts[q]; j++)
                CHECK(hits->distances[hits->offsets[q] + j] >=
                          hits->distances[hits->offsets[q] + j - 1],
                      "query %zu: not sorted", q);
        }
    }
    ivdb_hits_free(hits);
    hits = NULL;
    /* NULL options: defaults (10 hits); max_distance 0 keeps exact ones. */
    OK(ivdb_sharded_search(idx, queries, qlen, 1, NULL, &hits, &e_));
    if (hits) CHECK(hits->total == 10, "default count: %zu", hits->total);
    ivdb_hits_free(hits);
    hits = NULL;
    ivdb_search_options near = {10, 1, 0, 0.0f, 0};
    OK(ivdb_sharded_search(idx, queries, qlen, 1, &near, &hits, &e_));
    if (hits) CHECK(hits->total == 1, "max_distance 0: %zu hits", hits->total);
    ivdb_hits_free(hits);

    /* upsert replaces; remove counts live keys only. */
    uint64_t k7 = 7;
    uint8_t v7[BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t l7 = BYTES, written = 0;
    OK(ivdb_sharded_upsert(idx, (const uint8_t *)&k7, v7, &l7, 1, &written, &e_));
    CHECK(written == 1, "upserted %zu", written);
    rows = NULL;
    OK(ivdb_sharded_get(idx, (const uint8_t *)&k7, 1, &rows, &e_));
    if (rows) CHECK(memcmp(rows->bytes, v7, BYTES) == 0, "upserted vector");
    ivdb_rows_free(rows);
    size_t removed = 0;
    OK(ivdb_sharded_remove(idx, (const uint8_t *)probe, 2, &removed, &e_));
    CHECK(removed == 1, "removed %zu", removed);
    OK(ivdb_sharded_len(idx, &len, &e_));
    CHECK(len == N - 1, "len after remove %zu", len);

    /* Bad input: clear errors, nothing written. */
    uint8_t wide[33] = {1, 2, 3};
    size_t l33 = 33;
    uint64_t k_new = 777777;
    err = NULL;
    st = ivdb_sharded_add(idx, (const uint8_t *)&k_new, wide, &l33, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "264 bits", "33-byte vector");
    err = NULL;
    st = ivdb_sharded_add(idx, NULL, vectors, lengths, 2, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "keys is NULL", "NULL keys");
    size_t zero = 0;
    err = NULL;
    st = ivdb_sharded_add(idx, (const uint8_t *)&k_new, vectors, &zero, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "vectors[0] is empty", "empty vector");
    ivdb_search_options bad = {10, 5, 0, -1.0f, 0};
    err = NULL;
    hits = NULL;
    st = ivdb_sharded_search(idx, queries, qlen, 1, &bad, &hits, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "options.exact 5", "bad exact");
    CHECK(hits == NULL, "hits written on failure");
    err = NULL;
    st = ivdb_sharded_maintain(idx, 99, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "task 99", "bad task");
    OK(ivdb_sharded_count(idx, (const uint8_t *)&k_new, 1, counts, &e_));
    CHECK(counts[0] == 0, "a failed add wrote key %llu", (unsigned long long)k_new);

    /* Maintenance and figures. */
    size_t n = 0;
    OK(ivdb_sharded_maintain(idx, IVDB_SHARDED_SAVE, &n, &e_));
    OK(ivdb_sharded_maintain(idx, IVDB_SHARDED_COMPACT, &n, &e_));
    OK(ivdb_sharded_maintain(idx, IVDB_SHARDED_REBUILD_BLOOM, &n, &e_));
    CHECK(n == N - 1, "bloom rebuilt from %zu keys", n);
    OK(ivdb_sharded_maintain(idx, IVDB_SHARDED_DRAIN, NULL, &e_));
    char *json = NULL;
    OK(ivdb_sharded_stats_json(idx, &json, &e_));
    CHECK(json != NULL && json[0] == '{', "stats %s", json ? json : "(null)");
    ivdb_free_string(json);

    /* Iteration sees every live row once. */
    ivdb_sharded_iter *it = NULL;
    OK(ivdb_sharded_iter_new(idx, &it, &e_));
    size_t seen = 0;
    uint64_t key_sum = 0;
    for (;;) {
        ivdb_rows *batch = NULL;
        OK(ivdb_sharded_iter_next(it, 97, &batch, &e_));
        size_t got = batch ? batch->len : 0;
        for (size_t i = 0; i < got; i++) {
            uint64_t k;
            memcpy(&k, batch->keys + i * 8, 8);
            key_sum += k;
            CHECK(batch->lengths[i] == BYTES, "row %zu length %zu", i, batch->lengths[i]);
        }
        ivdb_rows_free(batch);
        seen += got;
        if (got == 0) break;
    }
    ivdb_sharded_iter_free(it);
    CHECK(seen == N - 1, "iterated %zu rows", seen);
    CHECK(key_sum == (uint64_t)N * (N + 1) / 2 - 7, "key sum %llu",
          (unsigned long long)key_sum);
    OK(ivdb_sharded_close(idx, &e_));

    /* A second open by options naming other keys is refused; read-only
     * reopening keeps everything and refuses writes. */
    idx = NULL;
    err = NULL;
    st = ivdb_sharded_open(dir, "{\"keys\": \"u128\"}", &idx, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "128-bit", "wrong key kind");
    OK(ivdb_sharded_open(dir, "{\"read_only\": true}", &idx, &e_));
    if (idx == NULL) return;
    OK(ivdb_sharded_len(idx, &len, &e_));
    CHECK(len == N - 1, "len after reopen %zu", len);
    err = NULL;
    st = ivdb_sharded_add(idx, (const uint8_t *)&k_new, vectors, lengths, 1, NULL, &err);
    expect_error(st, err, IVDB_READ_ONLY, "read-only", "add to read-only");
    OK(ivdb_sharded_close(idx, &e_));
}

static void hamming_u128(const char *dir) {
    ivdb_sharded *idx = NULL;
    OK(ivdb_sharded_open(dir, "{\"keys\": \"u128\", \"vectors\": {\"kind\": \"hamming\", \"bits\": 32}}",
                         &idx, &e_));
    if (idx == NULL) return;
    CHECK(ivdb_sharded_key_bytes(idx) == 16, "key bytes %zu", ivdb_sharded_key_bytes(idx));
    uint8_t keys[3][16];
    uint8_t vecs[3][4] = {{0, 0, 0, 0}, {0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff}};
    size_t lengths[3] = {4, 4, 4};
    for (int i = 0; i < 3; i++) {
        memset(keys[i], 0, 16);
        keys[i][0] = 0xAB;
        keys[i][15] = (uint8_t)i;
    }
    size_t added = 0;
    OK(ivdb_sharded_add(idx, &keys[0][0], &vecs[0][0], lengths, 3, &added, &e_));
    CHECK(added == 3, "added %zu", added);
    ivdb_hits *hits = NULL;
    ivdb_search_options opts = {3, 1, 0, -1.0f, 0};
    OK(ivdb_sharded_search(idx, &vecs[0][0], lengths, 1, &opts, &hits, &e_));
    if (hits) {
        CHECK(hits->total == 3 && hits->key_bytes == 16, "hits %zu", hits->total);
        if (hits->total == 3) {
            CHECK(memcmp(hits->keys, keys[0], 16) == 0, "first key");
            CHECK(memcmp(hits->keys + 16, keys[1], 16) == 0, "second key");
            CHECK(hits->distances[0] == 0.0f && hits->distances[1] == 1.0f &&
                      hits->distances[2] == 32.0f,
                  "hamming distances %f %f %f", hits->distances[0], hits->distances[1],
                  hits->distances[2]);
        }
    }
    ivdb_hits_free(hits);
    /* A vector of another length is an error naming both lengths. */
    uint8_t five[5] = {0};
    size_t l5 = 5;
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_sharded_add(idx, &keys[0][0], five, &l5, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "40 bits", "hamming length");
    /* Keys are generated for 64-bit indexes only. */
    uint64_t gen = 0;
    err = NULL;
    st = ivdb_sharded_add_generated(idx, &vecs[0][0], lengths, 1, &gen, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "64-bit keys", "u128 generated");
    OK(ivdb_sharded_close(idx, &e_));
    /* Reopened without saying which keys: as on disk. */
    idx = NULL;
    OK(ivdb_sharded_open(dir, NULL, &idx, &e_));
    CHECK(idx != NULL && ivdb_sharded_key_bytes(idx) == 16, "reopened key bytes");
    size_t len = 0;
    if (idx) OK(ivdb_sharded_len(idx, &len, &e_));
    CHECK(len == 3, "len %zu", len);
    OK(ivdb_sharded_close(idx, &e_));
}

static void unit_index(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/unit.ivdb", dir);
    ivdb_unit *idx = NULL;
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_unit_new("{\"max_dim\": 128, \"conectivity\": 8}", &idx, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "unknown option \"conectivity\"", "misspelt");
    CHECK(idx == NULL, "handle written on failure");
    OK(ivdb_unit_new("{\"max_dim\": 128}", &idx, &e_));
    if (idx == NULL) return;
    uint64_t keys[3] = {10, 20, 30};
    uint8_t vecs[8 + 16 + 8];
    for (size_t i = 0; i < sizeof vecs; i++) vecs[i] = next_byte();
    size_t lengths[3] = {8, 16, 8};
    size_t added = 0;
    OK(ivdb_unit_add(idx, keys, vecs, lengths, 3, &added, &e_));
    CHECK(added == 3, "added %zu", added);
    /* 256 bits exceed max_dim 128: an error, nothing added. */
    uint8_t wide[32] = {0};
    size_t l32 = 32;
    uint64_t k40 = 40;
    err = NULL;
    st = ivdb_unit_add(idx, &k40, wide, &l32, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "256", "too wide");
    size_t len = 0;
    OK(ivdb_unit_len(idx, &len, &e_));
    CHECK(len == 3, "len %zu", len);
    /* Generated keys: from len() = 3 up, keys in use skipped; a bad vector
     * anywhere adds nothing; NULL out_keys is refused. */
    uint64_t gen[2] = {0, 0};
    OK(ivdb_unit_add_generated(idx, vecs, lengths, 2, gen, &e_));
    CHECK(gen[0] == 3 && gen[1] == 4, "generated %llu %llu", (unsigned long long)gen[0],
          (unsigned long long)gen[1]);
    size_t bad_lengths[2] = {8, 32};
    uint8_t bad[40] = {0};
    err = NULL;
    st = ivdb_unit_add_generated(idx, bad, bad_lengths, 2, gen, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "256", "generated, too wide");
    err = NULL;
    st = ivdb_unit_add_generated(idx, vecs, lengths, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "out_keys", "generated, NULL out_keys");
    uint64_t gone[2] = {3, 4};
    OK(ivdb_unit_remove(idx, gone, 2, NULL, &e_));
    OK(ivdb_unit_len(idx, &len, &e_));
    CHECK(len == 3, "len %zu", len);
    /* The 128-bit code's first 64 bits find it at 0. */
    ivdb_hits *hits = NULL;
    ivdb_search_options opts = {3, 1, 0, -1.0f, 0};
    size_t l8 = 8;
    OK(ivdb_unit_search(idx, vecs + 8, &l8, 1, &opts, &hits, &e_));
    if (hits) {
        uint64_t k;
        memcpy(&k, hits->keys, 8);
        CHECK(hits->total == 3 && k == 20 && hits->distances[0] == 0.0f, "unit search");
    }
    ivdb_hits_free(hits);
    ivdb_rows *rows = NULL;
    OK(ivdb_unit_get(idx, &keys[1], 1, &rows, &e_));
    if (rows) CHECK(rows->lengths[0] == 16 && memcmp(rows->bytes, vecs + 8, 16) == 0, "get");
    ivdb_rows_free(rows);
    /* One buffer in memory and back; a cut buffer is refused. */
    ivdb_buffer *buf = NULL;
    OK(ivdb_unit_to_buffer(idx, &buf, &e_));
    if (buf) {
        ivdb_unit *from = NULL;
        OK(ivdb_unit_from_buffer(buf->bytes, buf->len, &from, &e_));
        if (from) {
            OK(ivdb_unit_len(from, &len, &e_));
            CHECK(len == 3, "len from a buffer %zu", len);
            ivdb_rows *again = NULL;
            OK(ivdb_unit_get(from, &keys[1], 1, &again, &e_));
            if (again) CHECK(memcmp(again->bytes, vecs + 8, 16) == 0, "get from a buffer");
            ivdb_rows_free(again);
        }
        ivdb_unit_free(from);
        ivdb_unit *cut = NULL;
        err = NULL;
        st = ivdb_unit_from_buffer(buf->bytes, buf->len - 1, &cut, &err);
        expect_error(st, err, IVDB_CORRUPT, "truncated", "a cut buffer");
        CHECK(cut == NULL, "no index from a cut buffer");
    }
    ivdb_buffer_free(buf);
    ivdb_buffer_free(NULL);
    /* Save, restore (in memory and viewed), copy, load, reset. */
    OK(ivdb_unit_file(idx, IVDB_UNIT_SAVE, path, &e_));
    ivdb_unit *viewed = NULL;
    OK(ivdb_unit_restore(path, true, &viewed, &e_));
    if (viewed) {
        OK(ivdb_unit_len(viewed, &len, &e_));
        CHECK(len == 3, "viewed len %zu", len);
        err = NULL;
        st = ivdb_unit_add(viewed, &k40, vecs, lengths, 1, NULL, &err);
        expect_error(st, err, IVDB_READ_ONLY, "read-only", "add to a viewed index");
        ivdb_unit *copy = NULL;
        OK(ivdb_unit_copy(viewed, &copy, &e_));
        if (copy) {
            OK(ivdb_unit_add(copy, &k40, vecs, lengths, 1, &added, &e_));
            CHECK(added == 1, "copy is writable");
        }
        ivdb_unit_free(copy);
    }
    ivdb_unit_free(viewed);
    uint64_t k10 = 10;
    size_t removed = 0;
    OK(ivdb_unit_remove(idx, &k10, 1, &removed, &e_));
    CHECK(removed == 1, "removed %zu", removed);
    OK(ivdb_unit_file(idx, IVDB_UNIT_LOAD, path, &e_));
    size_t counts[1] = {0};
    OK(ivdb_unit_count(idx, &k10, 1, counts, &e_));
    CHECK(counts[0] == 1, "load brought key 10 back: %zu", counts[0]);
    size_t walked = 0;
    for (size_t start = 0;; start += 2) {
        rows = NULL;
        OK(ivdb_unit_rows(idx, start, 2, &rows, &e_));
        size_t got = rows ? rows->len : 0;
        walked += got;
        ivdb_rows_free(rows);
        if (got == 0) break;
    }
    CHECK(walked == 3, "walked %zu rows", walked);
    char *json = NULL;
    OK(ivdb_unit_stats_json(idx, &json, &e_));
    CHECK(json != NULL && strstr(json, "\"dirty\":0") != NULL, "stats %s", json ? json : "");
    ivdb_free_string(json);
    err = NULL;
    st = ivdb_unit_file(idx, 7, path, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "op 7", "bad file op");
    err = NULL;
    snprintf(path, sizeof path, "%s/missing.ivdb", dir);
    ivdb_unit *none = NULL;
    st = ivdb_unit_restore(path, false, &none, &err);
    CHECK(st != IVDB_OK && none == NULL, "restore of a missing file");
    ivdb_error_free(err);
    OK(ivdb_unit_reset(idx, &e_));
    OK(ivdb_unit_len(idx, &len, &e_));
    CHECK(len == 0, "len after reset %zu", len);
    ivdb_unit_free(idx);
}

/* The standalone bloom filter: growth past its first link, no false
 * negatives, 8- and 16-byte keys, save and load, clear, errors. */
static void bloom_filter(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/keys.bloom", dir);
    ivdb_bloom *bf = NULL;
    OK(ivdb_bloom_new("{\"initial_capacity\": 100, \"error_rate\": 0.01}", &bf, &e_));
    if (!bf) return;
    uint64_t keys[500];
    for (size_t i = 0; i < 500; i++) keys[i] = i * 7919u;
    OK(ivdb_bloom_add(bf, (const uint8_t *)keys, 8, NULL, 500, &e_));
    uint8_t wide[2][16];
    memset(wide, 0xAB, sizeof wide);
    wide[1][15] = 0;
    OK(ivdb_bloom_add(bf, &wide[0][0], 16, NULL, 1, &e_));
    bool found[500];
    OK(ivdb_bloom_contains(bf, (const uint8_t *)keys, 8, NULL, 500, found, &e_));
    size_t hits = 0;
    for (size_t i = 0; i < 500; i++) hits += found[i];
    CHECK(hits == 500, "false negatives: %zu of 500 found", hits);
    bool w[2] = {false, true};
    OK(ivdb_bloom_contains(bf, &wide[0][0], 16, NULL, 2, w, &e_));
    CHECK(w[0], "a 16-byte key added is found");
    /* Keys of any length (an empty one too); a 16-byte key is the same key
     * given with its length. */
    const uint8_t text[] = "isccvdb";
    size_t lens[3] = {4, 3, 0};
    OK(ivdb_bloom_add(bf, text, 0, lens, 3, &e_));
    size_t l16 = 16;
    bool v[3] = {false, false, false};
    OK(ivdb_bloom_contains(bf, text, 0, lens, 3, v, &e_));
    CHECK(v[0] && v[1] && v[2], "variable-length keys found: %d %d %d", v[0], v[1], v[2]);
    OK(ivdb_bloom_contains(bf, &wide[0][0], 0, &l16, 1, v, &e_));
    CHECK(v[0], "a 16-byte key given with its length is the same key");
    char *json = NULL;
    OK(ivdb_bloom_stats_json(bf, &json, &e_));
    CHECK(json && strstr(json, "\"initial_capacity\":100") && !strstr(json, "\"filters\":1,"),
          "stats after growth: %s", json ? json : "(null)");
    ivdb_free_string(json);
    OK(ivdb_bloom_save(bf, path, &e_));
    ivdb_bloom *back = NULL;
    OK(ivdb_bloom_load(path, &back, &e_));
    if (back) {
        bool again[500];
        OK(ivdb_bloom_contains(back, (const uint8_t *)keys, 8, NULL, 500, again, &e_));
        CHECK(memcmp(again, found, sizeof again) == 0, "loaded filter answers differently");
        OK(ivdb_bloom_clear(back, &e_));
        OK(ivdb_bloom_contains(back, (const uint8_t *)keys, 8, NULL, 1, again, &e_));
        CHECK(!again[0], "a cleared filter holds nothing");
    }
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_bloom_add(bf, (const uint8_t *)keys, 4, NULL, 1, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "key_bytes 4", "4-byte keys");
    err = NULL;
    st = ivdb_bloom_contains(bf, (const uint8_t *)keys, 8, NULL, 1, NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "out_found", "NULL out_found");
    err = NULL;
    st = ivdb_bloom_add(bf, text, 0, NULL, 2, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "lengths", "NULL lengths");
    ivdb_bloom *none = NULL;
    err = NULL;
    st = ivdb_bloom_new("{\"error_rate\": 1.5}", &none, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "error rate", "bad error rate");
    CHECK(none == NULL, "no filter on error");
    err = NULL;
    st = ivdb_bloom_new("{\"fpr\": 0.1}", &none, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "fpr", "unknown option");
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("not a bloom filter", f);
        fclose(f);
    }
    err = NULL;
    st = ivdb_bloom_load(path, &none, &err);
    expect_error(st, err, IVDB_CORRUPT, "magic", "damaged file");
    ivdb_bloom_free(back);
    ivdb_bloom_free(bf);
    ivdb_bloom_free(NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EMPTY_DIR\n", argv[0]);
        return 2;
    }
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/nphd", argv[1]);
    snprintf(b, sizeof b, "%s/hamming", argv[1]);
    nphd_u64(a);
    hamming_u128(b);
    unit_index(argv[1]);
    bloom_filter(argv[1]);
    /* NULL is harmless everywhere a library object is released. */
    ivdb_hits_free(NULL);
    ivdb_rows_free(NULL);
    ivdb_sharded_iter_free(NULL);
    ivdb_unit_free(NULL);
    CHECK(ivdb_sharded_close(NULL, NULL) == IVDB_OK, "close NULL");
    CHECK(ivdb_sharded_key_bytes(NULL) == 0, "key bytes of NULL");
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
