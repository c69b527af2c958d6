/* (Status and error are read after each call returns: C leaves the order
 * of argument evaluation open.)
 *
 * A mutation fuzzer for the C ABI's JSON entry points: options of
 * ivdb_open and ivdb_store_open, ivdb_add_json, ivdb_search_json,
 * ivdb_search_columns, and the store's entries and metadata
 * (ivdb_store_put_json, ivdb_store_put_metadata_json, then a read of what
 * was accepted). Valid seeds are mutated
 * (bytes flipped, JSON tokens spliced in, cut, repeated, nested deep) and
 * every call's outputs and errors are freed. Built under AddressSanitizer
 * with leak detection: a crash, an invalid access or a leak fails it.
 *
 * usage: ffi_json_fuzz SECONDS [SEED]
 * Prints "fuzz: N calls (ok A, errors B) in S s" and exits 0, or 1 when a
 * call returned a status outside the ABI's list. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iscc_vdb.h"

static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *ENTRY_SEEDS[] = {
    "{\"iscc_code\": \"ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA\"}",
    "[{\"iscc_id\": \"ISCC:MAIGGGMBT3LBUEH7\", \"units\": [\"ISCC:AABZDEXL5LFONF3P32R43YQVSG6Z4\", "
    "\"ISCC:EMBU2U63YMMZCYARM4M65SXVTMC5K\", \"ISCC:GABTZ3ELYXPCZTHM7G5ZS7KCJCVJY\", "
    "\"ISCC:IABRXGUEB7YFBT67YD5OLXDNHMPXY\"], \"title\": \"x\"}]",
    "{\"units\": [\"ISCC:GAA7KNIMBHNQRM35\"], \"extra\": {\"a\": [1, 2.5, null, true]}}",
    "{\"units\": [\"ISCC:GAA7KNIMBHNQRM35\"], \"features\": [{\"maintype\": \"content\", "
    "\"subtype\": \"text\", \"simprints\": [\"AAAAAAAAAAc\", \"AAAAAAAAAAE\"], \"offsets\": [0, 9], "
    "\"sizes\": [9, 9]}], \"simprints\": {\"SEMANTIC_TEXT_V0\": [{\"simprint\": \"AAAAAAAAAAc\"}]}}",
};
static const char *QUERY_SEEDS[] = {
    "{\"iscc_code\": \"ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA\"}",
    "{\"units\": [\"ISCC:AABZDEXL5LFONF3P32R43YQVSG6Z4\", \"ISCC:GAA7KNIMBHNQRM35\"]}",
    "[{\"units\": [\"ISCC:EMBU2U63YMMZCYARM4M65SXVTMC5K\"]}, {\"iscc_code\": \"ISCC:GAA7KNIMBHNQRM35\"}]",
    "{\"features\": [{\"maintype\": \"content\", \"subtype\": \"text\", \"simprints\": "
    "[\"AAAAAAAAAAc\"]}], \"detail\": true, \"simprint_threshold\": 0.5}",
    "{\"queries\": [{\"iscc_id\": \"ISCC:MAIGGGMBT3LBUEH7\"}, {\"simprints\": {\"SEMANTIC_TEXT_V0\": "
    "[{\"simprint\": \"AAAAAAAAAAc\", \"offset\": 1}]}}], \"detail\": true}",
};
static const char *OPTION_SEEDS[] = {
    "{\"durable\": false}",
    "{\"durable\": false, \"max_dim\": 128, \"realm_id\": 1, \"unit_threshold\": 0.8}",
    "{\"durable\": false, \"connectivity\": 32, \"expansion_add\": 64, \"expansion_search\": 32, "
    "\"shard_size\": 65536, \"hub_id\": 7}",
};
static const char *STORE_OPTION_SEEDS[] = {
    "{\"durable\": false}",
    "{\"durable\": false, \"read_only\": false, \"realm\": 0}",
    "{\"durable\": false, \"read_only\": true}",
};
static const char *TOKENS[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "1e999", "-0", "18446744073709551616",
    "\"ISCC:\"", "\"\\u0000\"", "\"\\ud800\"", "\xff", "\xc3\x28", "[[[[[[[[", "{\"a\":", "\"units\"",
    "\"iscc_code\"", "\"iscc_id\"", "\"ISCC:MAIGGGMBT3LBUEH7\"", "0.5", "-1", "4294967296",
    "\"features\"", "\"simprints\"", "\"AAAAAAAAAAc\"", "\"queries\"",
};

/* A mutated copy of `seed` (NUL-terminated, malloc'd). */
static char *mutate(const char *seed) {
    size_t cap = strlen(seed) * 4 + 4096;
    char *s = malloc(cap);
    strcpy(s, seed);
    size_t len = strlen(s);
    int rounds = (int)(next() % 6);
    for (int r = 0; r < rounds; r++) {
        size_t at = len ? next() % (len + 1) : 0;
        switch (next() % 6) {
        case 0: /* flip a byte */
            if (len) s[next() % len] ^= (char)(1u << (next() % 8));
            break;
        case 1: { /* splice a token */
            const char *t = TOKENS[next() % (sizeof TOKENS / sizeof *TOKENS)];
            size_t tl = strlen(t);
            if (len + tl + 1 < cap) {
                memmove(s + at + tl, s + at, len - at + 1);
                memcpy(s + at, t, tl);
                len += tl;
            }
            break;
        }
        case 2: /* cut */
            s[at] = '\0';
            len = at;
            break;
        case 3: { /* repeat a slice */
            size_t from = len ? next() % len : 0;
            size_t n = len - from < 64 ? len - from : 64;
            if (len + n + 1 < cap) {
                memmove(s + at + n, s + at, len - at + 1);
                memmove(s + at, s + from + (from >= at ? n : 0), n);
                len += n;
            }
            break;
        }
        case 4: /* delete a byte */
            if (at < len) {
                memmove(s + at, s + at + 1, len - at);
                len--;
            }
            break;
        default: /* nest deep */
            if (len + 2002 < cap) {
                memmove(s + 1000, s, len + 1);
                memset(s, '[', 1000);
                len += 1000;
                memset(s + len, ']', 1000);
                len += 1000;
                s[len] = '\0';
            }
            break;
        }
    }
    return s;
}

static long ok_calls, error_calls, bad_status;

static void account(ivdb_status st, ivdb_error *err) {
    if (st == IVDB_OK) {
        ok_calls++;
    } else {
        error_calls++;
        if (st > IVDB_CORRUPT || err == NULL || ivdb_error_code(err) != st ||
            ivdb_error_message(err) == NULL) {
            bad_status++;
            fprintf(stderr, "fuzz: status %u with a bad error object\n", (unsigned)st);
        }
    }
    ivdb_error_free(err);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 0x9E3779B97F4A7C15ull;
    if (rng == 0) rng = 1;
    ivdb_index *idx = NULL;
    ivdb_error *err = NULL;
    if (ivdb_open(NULL, "{\"durable\": false}", &idx, &err) != IVDB_OK) {
        fprintf(stderr, "fuzz: cannot open an in-memory index\n");
        return 1;
    }
    /* Two store directories: one store stays open for entries and
     * metadata, the other is opened and closed with mutated options. */
    char store_dir[] = "/tmp/ivdb-fuzz-store-XXXXXX";
    char open_dir[] = "/tmp/ivdb-fuzz-open-XXXXXX";
    if (mkdtemp(store_dir) == NULL || mkdtemp(open_dir) == NULL) {
        fprintf(stderr, "fuzz: mkdtemp failed\n");
        return 1;
    }
    ivdb_store *store = NULL;
    err = NULL;
    if (ivdb_store_open(store_dir, "{\"durable\": false}", &store, &err) != IVDB_OK) {
        fprintf(stderr, "fuzz: cannot open a store\n");
        return 1;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long calls = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double elapsed = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (elapsed >= seconds) break;
        char *in;
        switch (next() % 13) {
        case 0: { /* options of ivdb_open */
            in = mutate(OPTION_SEEDS[next() % 3]);
            ivdb_index *other = NULL;
            err = NULL;
            ivdb_status st = ivdb_open(NULL, in, &other, &err);
            account(st, err);
            if (st == IVDB_OK) {
                err = NULL;
                st = ivdb_close(other, &err);
                account(st, err);
            }
            break;
        }
        case 1:
        case 2:
        case 3: { /* entries */
            in = mutate(ENTRY_SEEDS[next() % 3]);
            char *ids = NULL;
            err = NULL;
            ivdb_status st = ivdb_add_json(idx, in, &ids, &err);
            account(st, err);
            ivdb_free_string(ids);
            break;
        }
        case 8: { /* the same queries, answered as columns */
            in = mutate(QUERY_SEEDS[next() % 3]);
            ivdb_columns *cols = NULL;
            err = NULL;
            ivdb_status st = ivdb_search_columns(idx, in, next() % 200, next() % 2, &cols, &err);
            account(st, err);
            if (st == IVDB_OK && cols->queries > 0 && cols->offsets[cols->queries] != cols->rows) {
                fprintf(stderr, "fuzz: columns offsets end at %zu of %zu rows\n",
                        cols->offsets[cols->queries], cols->rows);
                bad_status++;
            }
            ivdb_free_columns(cols);
            break;
        }
        case 9:
        case 10: { /* store entries under random keys, read back when stored */
            in = mutate(ENTRY_SEEDS[next() % 3]);
            uint64_t key = next();
            char *id = NULL;
            err = NULL;
            ivdb_status st = ivdb_store_put_json(store, key, in, &id, &err);
            account(st, err);
            ivdb_free_string(id);
            if (st == IVDB_OK) {
                char *back = NULL;
                err = NULL;
                account(ivdb_store_get_json(store, key, &back, &err), err);
                ivdb_free_string(back);
                bool deleted = false;
                err = NULL;
                account(ivdb_store_delete(store, key, &deleted, &err), err);
            }
            break;
        }
        case 11: { /* store metadata: mutated keys and values */
            in = mutate(ENTRY_SEEDS[next() % 3]);
            const char *key = in + (strlen(in) > 4 ? next() % 4 : 0);
            err = NULL;
            ivdb_status st = ivdb_store_put_metadata_json(store, key, in, &err);
            account(st, err);
            char *back = NULL;
            err = NULL;
            st = ivdb_store_get_metadata_json(store, key, &back, &err);
            account(st, err);
            ivdb_free_string(back);
            break;
        }
        case 12: { /* options of ivdb_store_open */
            in = mutate(STORE_OPTION_SEEDS[next() % 3]);
            ivdb_store *other = NULL;
            err = NULL;
            ivdb_status st = ivdb_store_open(open_dir, in, &other, &err);
            account(st, err);
            if (st == IVDB_OK) {
                err = NULL;
                account(ivdb_store_close(other, &err), err);
            }
            break;
        }
        default: { /* queries, counts from 0 to absurd */
            in = mutate(QUERY_SEEDS[next() % 3]);
            char *out = NULL;
            size_t counts[] = {0, 1, 10, 1000, 100000, 100001, (size_t)1 << 40, SIZE_MAX};
            size_t count = counts[next() % 8];
            err = NULL;
            ivdb_status st = ivdb_search_json(idx, in, count, next() % 2, &out, &err);
            account(st, err);
            ivdb_free_string(out);
            break;
        }
        }
        free(in);
        calls++;
    }
    err = NULL;
    ivdb_status st = ivdb_close(idx, &err);
    account(st, err);
    err = NULL;
    account(ivdb_store_close(store, &err), err);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", store_dir, open_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s, %s\n", store_dir, open_dir);
    printf("fuzz: %ld calls (ok %ld, errors %ld) in %.0f s\n", calls, ok_calls, error_calls, seconds);
    return bad_status ? 1 : 0;
}
