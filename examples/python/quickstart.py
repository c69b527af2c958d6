"""Quick-start: index two entries in memory and search one of them.

    pip install ./bindings/python && python examples/python/quickstart.py
"""

from iscc_vdb import IsccIndex, IsccVdbError

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
    try:
        idx.add({"iscc_code": "ISCC:NOT-VALID"})
    except ValueError as e:  # InvalidIsccError is a ValueError and an IsccVdbError
        assert isinstance(e, IsccVdbError)
        print("rejected:", e.code, e)
