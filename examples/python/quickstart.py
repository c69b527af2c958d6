"""Quick-start: index two entries in memory and search one of them; then
write entries through the store of a directory and search them with an
index opened there.

    pip install ./bindings/python && python examples/python/quickstart.py
"""

import tempfile

from iscc_vdb import IsccIndex, IsccStore, IsccVdbError, iscc_id_key

CODE = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"

with IsccIndex() as idx:  # in memory; a path makes it persistent
    ids = idx.add(
        [
            {"iscc_code": CODE, "title": "first"},
            {"units": ["ISCC:AAAYPXW445FTYNJ3", "ISCC:EAARIWBKT3AIVI7O"], "title": "second"},
        ]
    )
    print("added:", ids)
    matches = idx.search(iscc_codes=CODE, count=5)
    for m in matches:
        print(m.iscc_id, f"{m.score:.3f}", sorted(m.units))
    print("keys:", matches.keys, "distances:", matches.distances)
    print("cost:", matches.visited_members, "visited,", matches.computed_distances, "distances")
    try:
        idx.add({"iscc_code": "ISCC:NOT-VALID"})
    except ValueError as e:  # InvalidIsccError is a ValueError and an IsccVdbError
        assert isinstance(e, IsccVdbError)
        print("rejected:", e.code, e)

with tempfile.TemporaryDirectory() as path:
    key = iscc_id_key(ids[0])  # an ISCC-ID as its 64-bit key
    with IsccStore(path) as store:  # the primary store of the directory
        store.put(key, {"iscc_code": CODE, "title": "stored"})
        store.put_metadata("source", "quick-start")
        print("stored:", [(k, e["title"]) for k, e in store.iter_entries()])
    with IsccIndex(path) as idx:  # replays the store's writes into its unit indexes
        print("found:", idx.search(iscc_codes=CODE).keys)
