/* search_jsonl: build an iscc-vdb index from a JSON Lines file of entries,
 * then search it and print the matches.
 *
 *   search_jsonl INDEX_DIR ENTRIES.jsonl ISCC [COUNT]
 *
 * Each line of ENTRIES.jsonl is one entry: {"iscc_id"?, "iscc_code"?,
 * "units"?, ...}. ISCC is an ISCC-CODE (or unit) to search for. Every call
 * is checked; errors print their status and message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscc_vdb.h"

/* Print an error, free it, and return 1. */
static int fail(const char *what, ivdb_status status, ivdb_error *err) {
    fprintf(stderr, "%s failed: %s: %s\n", what, ivdb_status_str(status),
            err ? ivdb_error_message(err) : "(no detail)");
    ivdb_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s INDEX_DIR ENTRIES.jsonl ISCC [COUNT]\n", argv[0]);
        return 2;
    }
    size_t count = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 5;
    if (ivdb_abi_version() != IVDB_ABI_VERSION) {
        fprintf(stderr, "library ABI %u, header ABI %u\n", ivdb_abi_version(), IVDB_ABI_VERSION);
        return 1;
    }

    ivdb_index *index = NULL;
    ivdb_error *err = NULL;
    ivdb_status st = ivdb_open(argv[1], NULL, &index, &err);
    if (st != IVDB_OK) return fail("ivdb_open", st, err);

    FILE *in = fopen(argv[2], "r");
    if (in == NULL) {
        perror(argv[2]);
        ivdb_close(index, NULL);
        return 1;
    }
    char line[16384];
    size_t added = 0, rejected = 0;
    while (fgets(line, sizeof line, in)) {
        char *ids = NULL;
        st = ivdb_add_json(index, line, &ids, &err);
        if (st == IVDB_OK) {
            added++;
            ivdb_free_string(ids);
        } else {
            /* A bad line is reported and skipped; the index is unchanged. */
            fprintf(stderr, "line %zu: %s: %s\n", added + rejected + 1,
                    ivdb_status_str(st), ivdb_error_message(err));
            ivdb_error_free(err);
            err = NULL;
            rejected++;
        }
    }
    fclose(in);
    printf("added %zu entries (%zu rejected)\n", added, rejected);

    ivdb_matches *m = NULL;
    st = ivdb_search(index, argv[3], NULL, 0, count, false, &m, &err);
    if (st != IVDB_OK) {
        fail("ivdb_search", st, err);
        ivdb_close(index, NULL);
        return 1;
    }
    printf("%zu matches for %s\n", m->len, argv[3]);
    for (size_t i = 0; i < m->len; i++) {
        const ivdb_match *x = &m->matches[i];
        printf("%2zu. %s  score %.4f%s\n", i + 1, x->iscc_id, x->score,
               x->instance ? "  (instance match)" : "");
        for (size_t u = 0; u < x->units_len; u++) {
            printf("      %-18s score %.4f  distance %.4f%s\n", x->units[u].unit_type,
                   x->units[u].score, x->units[u].distance,
                   x->units[u].kept ? "" : "  (below threshold)");
        }
    }
    ivdb_free_matches(m);

    st = ivdb_close(index, &err); /* saves the index */
    if (st != IVDB_OK) return fail("ivdb_close", st, err);
    return 0;
}
