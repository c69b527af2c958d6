/* C test of the iscc-vdb C ABI: add, get, search, remove, error paths,
 * every free function with NULL. Exits non-zero on the first failure.
 * Usage: ffi_smoke CORPUS.jsonl */
#include <pthread.h>
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

/* Expect `status` == `want`, an error whose code matches and whose message
 * contains `needle`; frees the error. */
static void expect_error(ivdb_status status, ivdb_error *err, ivdb_status want,
                         const char *needle, const char *what) {
    CHECK(status == want, "%s: got %s, want %s", what, ivdb_status_str(status),
          ivdb_status_str(want));
    CHECK(err != NULL, "%s: no error object", what);
    if (err != NULL) {
        CHECK(ivdb_error_code(err) == want, "%s: error code %u", what,
              (unsigned)ivdb_error_code(err));
        CHECK(strstr(ivdb_error_message(err), needle) != NULL,
              "%s: message \"%s\" lacks \"%s\"", what, ivdb_error_message(err),
              needle);
        ivdb_error_free(err);
    }
}

/* ---- threads: 8 searchers while one writer adds ------------------------- */

typedef struct {
    ivdb_index *idx;
    const char *code;
    int errors;
    int searches;
} searcher;

static volatile int writer_done = 0;

static void *search_loop(void *arg) {
    searcher *s = (searcher *)arg;
    do {
        ivdb_matches *m = NULL;
        ivdb_error *err = NULL;
        ivdb_status st = ivdb_search(s->idx, s->code, NULL, 0, 10, false, &m, &err);
        if (st != IVDB_OK || m == NULL || m->len == 0) {
            s->errors++;
            if (err) ivdb_error_free(err);
        }
        ivdb_free_matches(m);
        s->searches++;
    } while (!writer_done || s->searches < 20);
    return NULL;
}

typedef struct {
    ivdb_index *idx;
    int errors;
} writer;

static void *add_loop(void *arg) {
    writer *w = (writer *)arg;
    char entry[256];
    for (int i = 0; i < 300; i++) {
        /* Distinct DATA units with generated ISCC-IDs. */
        snprintf(entry, sizeof entry,
                 "{\"units\": [\"ISCC:GAA7KNIM%c%cNQRM35\"], \"n\": %d}",
                 'A' + i % 26, 'A' + (i / 26) % 26, i);
        char *ids = NULL;
        ivdb_error *err = NULL;
        if (ivdb_add_json(w->idx, entry, &ids, &err) != IVDB_OK) {
            fprintf(stderr, "writer: %s\n", ivdb_error_message(err));
            ivdb_error_free(err);
            w->errors++;
        }
        ivdb_free_string(ids);
    }
    writer_done = 1;
    return NULL;
}

static void threads_test(ivdb_index *idx, const char *code) {
    pthread_t threads[9];
    searcher s[8];
    writer w = {idx, 0};
    for (int i = 0; i < 8; i++) {
        s[i].idx = idx;
        s[i].code = code;
        s[i].errors = 0;
        s[i].searches = 0;
        pthread_create(&threads[i], NULL, search_loop, &s[i]);
    }
    pthread_create(&threads[8], NULL, add_loop, &w);
    for (int i = 0; i < 9; i++) pthread_join(threads[i], NULL);
    int total = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(s[i].errors == 0, "searcher %d: %d errors", i, s[i].errors);
        total += s[i].searches;
    }
    CHECK(w.errors == 0, "writer errors %d", w.errors);
    printf("threads: %d searches by 8 threads while 300 entries were added\n", total);
}

/* ---- the store of an index directory on its own ------------------------ */

static void store_test(const char *code_entry) {
    char dir[] = "/tmp/ivdb-store-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ivdb_store *s = NULL;
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_store_open(dir, "{\"durable\": false}", &s, &err);
    CHECK(st == IVDB_OK && s != NULL, "store_open: %s", err ? ivdb_error_message(err) : "");
    if (st != IVDB_OK) return;
    const uint64_t key = 0x3A1B2C3D4E5F6071ull;
    uint64_t parsed = 0;
    st = ivdb_iscc_id_key("ISCC:MAIGGGMBT3LBUEH7", &parsed, NULL);
    CHECK(st == IVDB_OK && parsed != 0, "iscc_id_key");
    err = NULL;
    st = ivdb_iscc_id_key("ISCC:AAA", &parsed, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "iscc_id", "iscc_id_key bad");
    char *id = NULL;
    st = ivdb_store_put_json(s, key, code_entry, &id, NULL);
    CHECK(st == IVDB_OK && id != NULL && strncmp(id, "ISCC:", 5) == 0, "store_put");
    uint64_t back_key = 0;
    CHECK(id && ivdb_iscc_id_key(id, &back_key, NULL) == IVDB_OK && back_key == key,
          "the key of the stored entry's ISCC-ID is the key");
    char *json = NULL;
    st = ivdb_store_get_json(s, key, &json, NULL);
    CHECK(st == IVDB_OK && id && strstr(json, id) != NULL, "store_get holds %s", id);
    ivdb_free_string(json);
    st = ivdb_store_entries_json(s, 0, 10, &json, NULL);
    CHECK(st == IVDB_OK && json[0] == '[' && strstr(json, id) != NULL, "store_entries");
    ivdb_free_string(json);
    st = ivdb_store_put_metadata_json(s, "note", "{\"a\": [1, 2]}", NULL);
    CHECK(st == IVDB_OK, "put_metadata");
    st = ivdb_store_get_metadata_json(s, "note", &json, NULL);
    CHECK(st == IVDB_OK && strcmp(json, "{\"a\":[1,2]}") == 0, "get_metadata");
    ivdb_free_string(json);
    err = NULL;
    st = ivdb_store_get_metadata_json(s, "absent", &json, &err);
    expect_error(st, err, IVDB_NOT_FOUND, "absent", "metadata absent");
    err = NULL;
    st = ivdb_store_put_json(s, key, "{\"title\": 1}", NULL, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "neither iscc_code nor units", "store bad entry");
    err = NULL;
    st = ivdb_store_put_json(s, key, "{not json", NULL, &err);
    expect_error(st, err, IVDB_INVALID_JSON, "entry_json", "store bad json");
    /* The index writer of the directory is excluded while the store writes. */
    ivdb_index *idx = NULL;
    err = NULL;
    st = ivdb_open(dir, NULL, &idx, &err);
    expect_error(st, err, IVDB_LOCKED, dir, "index beside store");
    bool deleted = false;
    CHECK(ivdb_store_delete(s, key, &deleted, NULL) == IVDB_OK && deleted, "store_delete");
    CHECK(ivdb_store_delete(s, key, &deleted, NULL) == IVDB_OK && !deleted, "delete twice");
    st = ivdb_store_put_json(s, key, code_entry, NULL, NULL);
    CHECK(st == IVDB_OK, "put again");
    CHECK(ivdb_store_close(s, NULL) == IVDB_OK, "store_close");
    CHECK(ivdb_store_close(NULL, NULL) == IVDB_OK, "store_close NULL");
    err = NULL;
    st = ivdb_store_get_json(NULL, key, &json, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "store is NULL", "null store");
    /* An index opened now finds the stored entry by search. */
    st = ivdb_open(dir, NULL, &idx, NULL);
    CHECK(st == IVDB_OK, "open after store");
    if (st == IVDB_OK) {
        char *m = NULL;
        st = ivdb_search_json(idx, code_entry, 10, false, &m, NULL);
        CHECK(st == IVDB_OK && id && strstr(m, id) != NULL, "index finds the stored entry");
        ivdb_free_string(m);
        ivdb_close(idx, NULL);
    }
    ivdb_free_string(id);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s corpus.jsonl\n", argv[0]);
        return 2;
    }
    CHECK(ivdb_abi_version() == IVDB_ABI_VERSION, "ABI version");
    CHECK(strcmp(ivdb_version(), IVDB_VERSION) == 0, "version %s", ivdb_version());

    ivdb_index *idx = NULL;
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_open(NULL, "{\"durable\": false}", &idx, &err);
    CHECK(st == IVDB_OK && idx != NULL, "open: %s",
          err ? ivdb_error_message(err) : "");

    /* Add every corpus line. */
    FILE *f = fopen(argv[1], "r");
    CHECK(f != NULL, "open %s", argv[1]);
    if (f == NULL) return 1;
    char line[8192];
    char first_id[64] = {0};
    char first_line[8192] = {0};
    int added = 0;
    while (fgets(line, sizeof line, f)) {
        char *ids = NULL;
        err = NULL;
        st = ivdb_add_json(idx, line, &ids, &err);
        CHECK(st == IVDB_OK, "add: %s", err ? ivdb_error_message(err) : "");
        if (err) ivdb_error_free(err);
        if (st == IVDB_OK) {
            if (added == 0) {
                /* ids is ["ISCC:…"] */
                sscanf(ids, "[\"%63[^\"]", first_id);
                strcpy(first_line, line);
            }
            added++;
        }
        ivdb_free_string(ids);
    }
    fclose(f);
    CHECK(added == 2000, "added %d", added);

    /* Get one back. */
    char *entry = NULL;
    st = ivdb_get_json(idx, first_id, &entry, NULL);
    CHECK(st == IVDB_OK && strstr(entry, first_id) != NULL, "get %s", first_id);
    ivdb_free_string(entry);

    /* Search by the first record's code: it comes first. */
    char query[512];
    const char *code = strstr(first_line, "\"iscc_code\":\"");
    CHECK(code != NULL, "first record has a code");
    if (code) {
        char value[256] = {0};
        sscanf(code, "\"iscc_code\":\"%255[^\"]", value);
        snprintf(query, sizeof query, "{\"iscc_code\": \"%s\"}", value);
        char *matches = NULL;
        st = ivdb_search_json(idx, query, 10, false, &matches, NULL);
        CHECK(st == IVDB_OK && strstr(matches, first_id) != NULL, "search finds %s",
              first_id);
        ivdb_free_string(matches);
        /* A batch of two queries gives an array. */
        char batch[1100];
        snprintf(batch, sizeof batch, "[%s, %s]", query, query);
        st = ivdb_search_json(idx, batch, 5, true, &matches, NULL);
        CHECK(st == IVDB_OK && matches[0] == '[', "batch search");
        ivdb_free_string(matches);
    }

    /* Columnar results: one query, then a batch of two. */
    if (code) {
        char value[256] = {0};
        sscanf(code, "\"iscc_code\":\"%255[^\"]", value);
        char req[640];
        snprintf(req, sizeof req, "{\"iscc_codes\": \"%s\", \"count\": 5}", value);
        ivdb_columns *c = NULL;
        st = ivdb_search_columns(idx, req, 0, false, &c, NULL);
        CHECK(st == IVDB_OK && c != NULL, "search_columns");
        if (st == IVDB_OK) {
            CHECK(!c->batch && c->queries == 1 && c->rows > 0 && c->rows <= 5, "one query: %zu rows",
                  c->rows);
            int found = 0;
            for (size_t r = 0; r < c->rows; r++) {
                found |= strncmp(c->iscc_ids + r * IVDB_ISCC_ID_LEN, first_id, IVDB_ISCC_ID_LEN) == 0;
                CHECK(c->distances[r] >= 0.0f && c->distances[r] <= 1.0f, "distance");
            }
            CHECK(found, "columns hold %s", first_id);
            CHECK(c->computed_distances[0] >= c->rows && c->visited_members[0] > 0,
                  "search counters %llu/%llu", (unsigned long long)c->visited_members[0],
                  (unsigned long long)c->computed_distances[0]);
            CHECK(c->unit_types > 0 && strstr(c->unit_type_names[0], "-V0") != NULL, "unit types");
            ivdb_free_columns(c);
        }
        snprintf(req, sizeof req, "{\"iscc_codes\": [\"%s\", \"%s\"], \"count\": 3}", value, value);
        c = NULL;
        st = ivdb_search_columns(idx, req, 0, false, &c, NULL);
        CHECK(st == IVDB_OK && c->batch && c->queries == 2 && c->offsets[2] == c->rows,
              "batch columns");
        ivdb_free_columns(c);
        ivdb_free_columns(NULL);
        err = NULL;
        c = (ivdb_columns *)0x1;
        st = ivdb_search_columns(idx, "{\"iscc_codes\": 5}", 0, false, &c, &err);
        expect_error(st, err, IVDB_INVALID_ARGUMENT, "iscc_codes", "columns bad request");
        CHECK(c == (ivdb_columns *)0x1, "output written on failure");
    }

    /* Chunk matches as columns: two entries share a segment. */
    {
        ivdb_index *f = NULL;
        st = ivdb_open(NULL, "{\"durable\": false}", &f, NULL);
        CHECK(st == IVDB_OK, "open for features");
        const char *docs =
            "[{\"units\": [\"ISCC:GAA7KNIMBHNQRM35\"], \"features\": [{\"maintype\": \"content\", "
            "\"subtype\": \"text\", \"simprints\": [\"AAAAAAAAAAE\", \"AAAAAAAAAAc\"], "
            "\"offsets\": [0, 700], \"sizes\": [700, 300]}]},"
            " {\"units\": [\"ISCC:GAA7KNIMBHNQRM36\"], \"simprints\": {\"CONTENT_TEXT_V0\": "
            "[{\"simprint\": \"AAAAAAAAAAc\"}]}}]";
        char *ids = NULL;
        st = ivdb_add_json(f, docs, &ids, NULL);
        CHECK(st == IVDB_OK, "add with features");
        ivdb_free_string(ids);
        const char *q = "{\"features\": [{\"maintype\": \"content\", \"subtype\": \"text\", "
                        "\"simprints\": [\"AAAAAAAAAAc\"]}], \"detail\": true, "
                        "\"simprint_threshold\": 0.99}";
        ivdb_columns *c = NULL;
        st = ivdb_search_columns(f, q, 0, false, &c, NULL);
        CHECK(st == IVDB_OK && c != NULL && c->chunks != NULL, "chunk columns");
        if (st == IVDB_OK) {
            const ivdb_chunk_columns *k = c->chunks;
            CHECK(c->rows == 0 && k->rows == 2 && k->offsets[1] == 2, "two chunk matches");
            CHECK(k->simprint_types == 1 && strcmp(k->simprint_type_names[0], "CONTENT-TEXT-V0") == 0,
                  "simprint type");
            CHECK(k->segments == 2 && k->segment_offsets[2] == 2, "segments %zu", k->segments);
            int with_offset = 0;
            for (size_t r = 0; r < k->rows; r++) {
                CHECK(k->scores[r] == 1.0f && k->type_matches[r] == 1 && k->type_queried[r] == 1,
                      "row %zu", r);
                size_t at = k->segment_offsets[r];
                CHECK(k->segment_freqs[at] == 2 && k->segment_query_chunks[at] == 0, "segment");
                if (k->segment_starts[at] == 700 && k->segment_sizes[at] == 300 &&
                    k->segment_chunks[at] == 1)
                    with_offset++;
                else
                    CHECK(k->segment_starts[at] == -1 && k->segment_sizes[at] == -1, "no offset");
            }
            CHECK(with_offset == 1, "one segment with its offset");
            ivdb_free_columns(c);
        }
        ivdb_close(f, NULL);
    }

    /* Structured results: search by units of the first record. */
    {
        char value[256] = {0};
        sscanf(code, "\"iscc_code\":\"%255[^\"]", value);
        ivdb_matches *m = NULL;
        st = ivdb_search(idx, value, NULL, 0, 5, false, &m, NULL);
        CHECK(st == IVDB_OK && m != NULL && m->len > 0, "ivdb_search");
        if (st == IVDB_OK) {
            int found = 0;
            for (size_t i = 0; i < m->len; i++) {
                const ivdb_match *x = &m->matches[i];
                CHECK(x->score >= 0.0f && x->score <= 1.0f, "score %f", x->score);
                CHECK(x->units_len > 0 || x->instance, "match without detail");
                for (size_t u = 0; u < x->units_len; u++) {
                    CHECK(strstr(x->units[u].unit_type, "-V0") != NULL, "unit type %s",
                          x->units[u].unit_type);
                }
                if (strcmp(x->iscc_id, first_id) == 0) found = 1;
            }
            CHECK(found, "ivdb_search finds %s", first_id);
            CHECK(m->instance_len >= 1, "instance matches %zu", m->instance_len);
        }
        ivdb_free_matches(m);
        /* Batch of three codes. */
        const char *codes[3] = {value, value, value};
        ivdb_matches *b = NULL;
        st = ivdb_search_batch(idx, codes, 3, 5, true, &b, NULL);
        CHECK(st == IVDB_OK && b != NULL && b[2].len == b[0].len, "ivdb_search_batch");
        ivdb_free_matches_batch(b, 3);
        /* Units that are not units. */
        const char *bad_units[1] = {"ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"};
        err = NULL;
        m = NULL;
        st = ivdb_search(idx, NULL, bad_units, 1, 5, false, &m, &err);
        expect_error(st, err, IVDB_INVALID_ISCC, "units[0]", "search with a code as unit");
        CHECK(m == NULL, "output written on failure");
        /* A count beyond the engine's maximum is refused, not an abort. */
        m = NULL;
        err = NULL;
        st = ivdb_search(idx, value, NULL, 0, (size_t)1 << 40, true, &m, &err);
        expect_error(st, err, IVDB_INVALID_ARGUMENT, "count", "search with count 2^40");
        CHECK(m == NULL, "output written on failure");
        threads_test(idx, value);
    }

    char *info = NULL;
    st = ivdb_info_json(idx, &info, NULL);
    CHECK(st == IVDB_OK && strstr(info, "\"size\":2300") != NULL, "info %s", info);
    ivdb_free_string(info);

    /* Remove it: get then says NOT_FOUND naming the ID. */
    size_t removed = 0;
    const char *ids[1] = {first_id};
    st = ivdb_remove(idx, ids, 1, &removed, NULL);
    CHECK(st == IVDB_OK && removed > 0, "remove: %zu", removed);
    err = NULL;
    entry = (char *)0x1;
    st = ivdb_get_json(idx, first_id, &entry, &err);
    expect_error(st, err, IVDB_NOT_FOUND, first_id, "get removed");
    CHECK(entry == (char *)0x1, "output written on failure");

    /* Upkeep: a copy in memory holds the same entries; compaction runs; a rebuild of one unit type; an unknown one is
     * refused; a writable handle needs no refresh. */
    {
        ivdb_index *copy = NULL;
        st = ivdb_copy(idx, &copy, NULL);
        CHECK(st == IVDB_OK && copy != NULL, "copy");
        char *copy_info = NULL;
        st = ivdb_info_json(copy, &copy_info, NULL);
        CHECK(st == IVDB_OK && strstr(copy_info, "\"size\":2299") != NULL, "copy info %s",
              copy_info);
        ivdb_free_string(copy_info);
        CHECK(ivdb_close(copy, NULL) == IVDB_OK, "close copy");
        size_t dropped = 0;
        st = ivdb_compact(idx, &dropped, NULL);
        CHECK(st == IVDB_OK, "compact (dropped %zu)", dropped);
        CHECK(ivdb_compact(idx, NULL, NULL) == IVDB_OK, "compact, count not wanted");
        const char *types[1] = {"META-NONE-V0"};
        CHECK(ivdb_rebuild_unit_types(idx, types, 1, NULL) == IVDB_OK, "rebuild one type");
        const char *bad[1] = {"NO-SUCH-TYPE"};
        err = NULL;
        st = ivdb_rebuild_unit_types(idx, bad, 1, &err);
        expect_error(st, err, IVDB_INVALID_ISCC, "NO-SUCH-TYPE", "rebuild unknown type");
        bool changed = true;
        CHECK(ivdb_refresh(idx, &changed, NULL) == IVDB_OK && !changed, "refresh writable");
    }

    /* Bad input through C. */
    char *out = NULL;
    err = NULL;
    st = ivdb_add_json(idx, "{not json", &out, &err);
    expect_error(st, err, IVDB_INVALID_JSON, "invalid JSON", "bad json");
    err = NULL;
    st = ivdb_add_json(idx, "{\"iscc_code\": \"ISCC:NOTVALID\"}", &out, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "entries[0].iscc_code", "bad iscc");
    err = NULL;
    st = ivdb_add_json(idx, "{\"title\": \"x\"}", &out, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "neither iscc_code nor units", "no units");
    err = NULL;
    st = ivdb_add_json(idx, "{\"units\": []}", &out, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "empty units", "empty units");
    err = NULL;
    st = ivdb_add_json(idx,
                       "{\"iscc_id\": \"ISCC:MEIGGGMBT3LBUEH7\", \"units\": "
                       "[\"ISCC:GAA7KNIMBHNQRM35\"]}",
                       &out, &err);
    expect_error(st, err, IVDB_WRONG_REALM, "realm", "wrong realm");
    err = NULL;
    st = ivdb_add_json(NULL, "{}", &out, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "index is NULL", "null index");
    err = NULL;
    st = ivdb_search_json(idx, NULL, 10, false, &out, &err);
    expect_error(st, err, IVDB_INVALID_ARGUMENT, "query_json is NULL", "null query");
    err = NULL;
    {
        size_t dropped = 7;
        st = ivdb_drop_remote("/tmp/not-a-uri", &dropped, &err);
        expect_error(st, err, IVDB_INVALID_ARGUMENT, "not a milvus", "drop_remote of a directory");
        CHECK(dropped == 7, "drop_remote wrote its count on failure");
        err = NULL;
        st = ivdb_drop_remote(NULL, NULL, &err);
        expect_error(st, err, IVDB_INVALID_ARGUMENT, "uri is NULL", "drop_remote NULL");
        err = NULL;
    }
    st = ivdb_explain_json("ISCC:AAA", &out, &err);
    expect_error(st, err, IVDB_INVALID_ISCC, "ISCC:AAA", "explain bad");
    st = ivdb_explain_json(first_id, &out, NULL);
    CHECK(st == IVDB_OK && strstr(out, "\"kind\"") != NULL, "explain id");
    ivdb_free_string(out);
    CHECK(out != NULL, "explain output");

    store_test("{\"iscc_code\": \"ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY\"}");

    /* Every free function takes NULL. */
    ivdb_free_string(NULL);
    ivdb_error_free(NULL);
    ivdb_free_matches(NULL);
    ivdb_free_matches_batch(NULL, 3);
    CHECK(ivdb_close(NULL, NULL) == IVDB_OK, "close NULL");
    CHECK(ivdb_error_code(NULL) == IVDB_INVALID_ARGUMENT, "error_code NULL");
    CHECK(strcmp(ivdb_error_message(NULL), "") == 0, "error_message NULL");

    CHECK(ivdb_close(idx, NULL) == IVDB_OK, "close");
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ffi_smoke: all checks passed\n");
    return 0;
}
