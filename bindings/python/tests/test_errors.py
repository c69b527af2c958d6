"""Every error class from real bad input; no input crashes the interpreter."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import iscc_vdb
from iscc_vdb import IsccIndex

CODE = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"


def test_bad_entries_and_queries_are_value_errors() -> None:
    with IsccIndex() as ix:
        with pytest.raises(iscc_vdb.InvalidIsccError) as e:
            ix.add({"iscc_code": "ISCC:NOT-VALID"})
        assert isinstance(e.value, ValueError) and "iscc_code" in str(e.value)
        with pytest.raises(ValueError, match="neither iscc_code nor units"):
            ix.add({"title": "no code"})
        with pytest.raises(ValueError, match="empty units"):
            ix.add({"units": []})
        with pytest.raises(iscc_vdb.InvalidIsccError):
            ix.search(iscc_codes="ISCC:AAA")
        with pytest.raises(iscc_vdb.InvalidArgumentError, match="count"):
            ix.search(iscc_codes=CODE, count=0)
        with pytest.raises(iscc_vdb.InvalidArgumentError, match="one of `iscc_codes`"):
            ix.search()
        with pytest.raises(iscc_vdb.InvalidArgumentError, match="units"):
            ix.search(units="ISCC:AAAYPXW445FTYNJ3")
        with pytest.raises(TypeError):
            ix.add({"iscc_code": CODE, "when": object()})
        with pytest.raises(TypeError):
            ix.get(5)  # type: ignore[arg-type]
        assert ix.size == 0, "nothing half-written"


def test_wrong_realm(corpus: list[dict]) -> None:
    with IsccIndex(realm_id=1) as ix:
        with pytest.raises(iscc_vdb.WrongRealmError) as e:
            ix.add(corpus[0])  # realm-0 ISCC-ID
        assert isinstance(e.value, ValueError) and e.value.code == "IVDB_WRONG_REALM"


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="shard_sise"):
        IsccIndex(shard_sise=5)
    with pytest.raises(iscc_vdb.InvalidArgumentError, match="max_dim"):
        IsccIndex(max_dim=100)


def test_lock_read_only_not_found_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "index"
    ix = IsccIndex(path)
    ix.add({"iscc_code": CODE})
    other = subprocess.run(
        [sys.executable, "-c", f"import iscc_vdb; iscc_vdb.IsccIndex({str(path)!r})"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert other.returncode != 0 and "LockedError" in other.stderr
    ix.close()
    with pytest.raises(iscc_vdb.ClosedError):
        ix.add({"iscc_code": CODE})
    ro = IsccIndex.restore(path, view=True)
    assert ro is not None
    with pytest.raises(iscc_vdb.ReadOnlyError):
        ro.add({"iscc_code": CODE})
    ro.close()
    with pytest.raises(iscc_vdb.NotFoundError):
        IsccIndex(tmp_path / "absent", read_only=True)
    assert IsccIndex.restore(tmp_path / "absent") is None


@pytest.mark.skipif(
    not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount")),
    reason="a real full disk needs a tmpfs mount (root)",
)
def test_a_full_disk_is_disk_full_error(tmp_path: Path, corpus: list[dict]) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        ix = IsccIndex(mnt / "index")
        acknowledged: list[str] = []
        with pytest.raises(iscc_vdb.DiskFullError) as e:
            for round_ in range(1000):
                batch = [dict(r, iscc_id=None, round=round_, pad="x" * 2000) for r in corpus[:200]]
                for entry in batch:
                    entry.pop("iscc_id")
                acknowledged.extend(ix.add(batch))
        assert isinstance(e.value, OSError) and "disk full" in str(e.value)
        found = ix.get(acknowledged[-5:])
        assert isinstance(found, list) and all(f is not None for f in found)
        # Saving the unit indexes may not fit either; the entries are in the store.
        with contextlib.suppress(iscc_vdb.DiskFullError):
            ix.close()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
