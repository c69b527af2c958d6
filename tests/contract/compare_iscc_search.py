"""Side by side: iscc-search 0.3.3's engine and `iscc-vdb serve --root` on one corpus.

Adds the corpus records (as iscc-search assets) to iscc-search's usearch
backend (in process) and to a fresh iscc-vdb server (over HTTP), asks both
for the 10 best matches of every STEP-th asset, and prints how the answers
compare: equal lists, equal score sequences, rank positions where one scores
higher, and the largest score difference for an ISCC-ID both return.

    python compare_iscc_search.py ISCC_VDB_BIN CORPUS_JSONL [STEP] [--exact]

Needs iscc-search==0.3.3 and httpx (the venv tests/contract/iscc_search.sh
makes: target/iscc-search-venv).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import typing

import httpx
from iscc_search.indexes.usearch import UsearchIndexManager
from iscc_search.schema import IsccEntry, IsccIndex, IsccQuery


def assets_of(corpus: str) -> list[dict[str, typing.Any]]:
    out = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            a: dict[str, typing.Any] = {"iscc_id": r["iscc_id"]}
            if r.get("iscc_code"):
                a["iscc_code"] = r["iscc_code"]
            if r.get("units") and len(r["units"]) >= 2:
                a["units"] = r["units"]
            if "iscc_code" in a or "units" in a:
                out.append(a)
    return out


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    exact = "--exact" in sys.argv
    binary, corpus = args[0], args[1]
    step = int(args[2]) if len(args) > 2 else 20
    assets = assets_of(corpus)
    tmp = tempfile.mkdtemp(prefix="compare-iscc-search-")
    ref = UsearchIndexManager(tmp + "/iscc-search")
    ref.create_index(IsccIndex(name="c"))
    ref.add_assets("c", [IsccEntry(**a) for a in assets])
    proc = subprocess.Popen(
        [binary, "serve", "--root", tmp + "/iscc-vdb", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    found = re.search(r"http://(\S+)", proc.stderr.readline())
    assert found, "iscc-vdb serve did not start"
    client = httpx.Client(base_url="http://" + found.group(1), timeout=120)
    try:
        client.post("/indexes", json={"name": "c"}).raise_for_status()
        for i in range(0, len(assets), 500):
            client.post("/indexes/c/assets", json=assets[i : i + 500]).raise_for_status()
        queries = same_list = same_scores = higher = lower = 0
        max_diff = 0.0
        for a in assets[::step]:
            q = {k: a[k] for k in ("iscc_code", "units") if k in a}
            theirs = ref.search_assets("c", IsccQuery(**q), 10).model_dump(mode="json")[
                "global_matches"
            ]
            ours = client.post(
                f"/indexes/c/search?limit=10&exact={str(exact).lower()}", json=q
            ).json()["global_matches"]
            queries += 1
            same_list += [m["iscc_id"] for m in theirs] == [m["iscc_id"] for m in ours]
            t = [round(m["score"], 5) for m in theirs]
            o = [round(m["score"], 5) for m in ours]
            same_scores += t == o
            higher += sum(1 for x, y in zip(o, t, strict=False) if x > y) + max(0, len(o) - len(t))
            lower += sum(1 for x, y in zip(o, t, strict=False) if x < y) + max(0, len(t) - len(o))
            by_id = {m["iscc_id"]: m["score"] for m in theirs}
            for m in ours:
                if m["iscc_id"] in by_id:
                    max_diff = max(max_diff, abs(by_id[m["iscc_id"]] - m["score"]))
        print(
            f"summary: assets={len(assets)} queries={queries} exact={exact} same_lists={same_list} "
            f"same_score_sequences={same_scores} ranks_iscc_vdb_higher={higher} "
            f"ranks_iscc_vdb_lower={lower} max_score_diff_same_id={max_diff:.3g}"
        )
    finally:
        proc.terminate()
        proc.wait()
        ref.close()


if __name__ == "__main__":
    main()
