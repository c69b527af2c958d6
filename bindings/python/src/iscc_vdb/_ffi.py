"""The C ABI of libiscc_vdb, declared from its header with ctypes.

The header ``iscc_vdb.h`` is the one description of the C ABI: every
function and struct is declared from its text there and the ABI version
comes from its ``#define``; the status names come from the library
(``ivdb_status_str``), so nothing here restates a signature or a number.
ctypes releases the GIL for the duration of every call into the library, so
Python threads search in parallel.

The library and header are the ones inside this package (put there when the
package was built); ``ISCC_VDB_LIB`` and ``ISCC_VDB_HEADER`` point to others.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def _path(env: str, name: str) -> Path:
    given = os.environ.get(env)
    path = Path(given) if given else _HERE / name
    if not path.is_file():
        raise ImportError(f"iscc_vdb: {path} not found (reinstall the package or set {env})")
    return path


_header = _path("ISCC_VDB_HEADER", "iscc_vdb.h").read_text(encoding="utf-8")
_lib = ctypes.CDLL(str(_path("ISCC_VDB_LIB", "libiscc_vdb.so")))

#: Every ``#define IVDB_* <integer>`` of the header.
DEFINES: dict[str, int] = {
    m[1]: int(m[2]) for m in re.finditer(r"^#define (IVDB_[A-Z_]+) (\d+)$", _header, re.M)
}

#: The C ABI version of the header these declarations come from.
ABI_VERSION: int = DEFINES["IVDB_ABI_VERSION"]

_PROTOTYPES: dict[str, str] = {
    m[2]: " ".join(m[1].split())
    for m in re.finditer(r"^([A-Za-z_][\w \t*]*?\b(ivdb_\w+)\(([^)]*)\));", _header, re.M)
}

# C types of the prototypes, as ctypes sees them. Strings the library hands
# over (`char *`, `char **out`) stay raw pointers so they can be freed after
# decoding; opaque handles are plain pointers.
_VOIDP_PP = ctypes.POINTER(ctypes.c_void_p)
_TYPES: dict[str, Any] = {
    "void": None,
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "uint32_t": ctypes.c_uint32,
    "ivdb_status": ctypes.c_uint32,
    "const char*": ctypes.c_char_p,
    "char*": ctypes.c_void_p,
    "char**": _VOIDP_PP,
    "const char*const*": ctypes.POINTER(ctypes.c_char_p),
    "size_t*": ctypes.POINTER(ctypes.c_size_t),
    "bool*": ctypes.POINTER(ctypes.c_bool),
    "ivdb_index*": ctypes.c_void_p,
    "const ivdb_index*": ctypes.c_void_p,
    "ivdb_index**": _VOIDP_PP,
    "ivdb_error*": ctypes.c_void_p,
    "const ivdb_error*": ctypes.c_void_p,
    "ivdb_error**": _VOIDP_PP,
    "ivdb_columns*": ctypes.c_void_p,
    "uint64_t": ctypes.c_uint64,
    "uint64_t*": ctypes.POINTER(ctypes.c_uint64),
    "ivdb_store*": ctypes.c_void_p,
    "const ivdb_store*": ctypes.c_void_p,
    "ivdb_store**": _VOIDP_PP,
    "ivdb_columns**": _VOIDP_PP,
    "const uint8_t*": ctypes.c_void_p,
    "const size_t*": ctypes.c_void_p,
    "ivdb_sharded*": ctypes.c_void_p,
    "const ivdb_sharded*": ctypes.c_void_p,
    "ivdb_sharded**": _VOIDP_PP,
    "ivdb_sharded_iter*": ctypes.c_void_p,
    "ivdb_sharded_iter**": _VOIDP_PP,
    "ivdb_hits*": ctypes.c_void_p,
    "ivdb_hits**": _VOIDP_PP,
    "ivdb_rows*": ctypes.c_void_p,
    "ivdb_rows**": _VOIDP_PP,
    "const ivdb_search_options*": ctypes.c_void_p,
    "ivdb_sharded_task": ctypes.c_uint32,
    "ivdb_unit*": ctypes.c_void_p,
    "const ivdb_unit*": ctypes.c_void_p,
    "ivdb_unit**": _VOIDP_PP,
    "ivdb_unit_file_op": ctypes.c_uint32,
    "const uint64_t*": ctypes.POINTER(ctypes.c_uint64),
    "ivdb_buffer*": ctypes.c_void_p,
    "ivdb_buffer**": _VOIDP_PP,
    "ivdb_bloom*": ctypes.c_void_p,
    "const ivdb_bloom*": ctypes.c_void_p,
    "ivdb_bloom**": _VOIDP_PP,
}

# Struct fields: strings in columns are fixed-width buffers, not
# NUL-terminated, so they stay raw pointers.
_FIELD_TYPES: dict[str, Any] = {
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "const size_t*": ctypes.c_void_p,
    "const uint64_t*": ctypes.c_void_p,
    "const char*": ctypes.c_void_p,
    "const char*const*": ctypes.POINTER(ctypes.c_char_p),
    "const float*": ctypes.c_void_p,
    "const bool*": ctypes.c_void_p,
    "const uint32_t*": ctypes.c_void_p,
    "const int64_t*": ctypes.c_void_p,
    "const ivdb_chunk_columns*": ctypes.c_void_p,
    "size_t*": ctypes.c_void_p,
    "uint8_t*": ctypes.c_void_p,
    "float*": ctypes.c_void_p,
    "uint64_t*": ctypes.c_void_p,
    "int32_t": ctypes.c_int32,
    "float": ctypes.c_float,
}


def struct(name: str) -> type[ctypes.Structure]:
    """A ctypes Structure laid out as the header's `typedef struct {...} name;`."""
    # One struct's body: no brace inside (the header's structs nest none).
    m = re.search(r"typedef struct \{([^{}]*)\} " + name + ";", _header)
    if m is None:
        raise ImportError(f"iscc_vdb: iscc_vdb.h declares no struct {name}")
    body = re.sub(r"/\*.*?\*/", "", m[1], flags=re.S)
    fields = []
    for decl in filter(None, (d.strip() for d in body.split(";"))):
        ctype, fname = _split_param(decl)
        key = re.sub(r"\s*\*\s*", "*", " ".join(ctype.split())).strip()
        if key not in _FIELD_TYPES:
            raise ImportError(f"iscc_vdb: {name}.{fname}: C type `{ctype}` is not mapped")
        fields.append((fname, _FIELD_TYPES[key]))
    return type(name, (ctypes.Structure,), {"_fields_": fields})


def _ctype(decl: str, what: str) -> Any:
    """The ctypes type of a C type (`const char *` and `const char*` alike)."""
    text = re.sub(r"\s*\*\s*", "*", " ".join(decl.split())).strip()
    if text not in _TYPES:
        raise ImportError(f"iscc_vdb: {what}: C type `{decl}` is not mapped")
    return _TYPES[text]


def _split_param(param: str) -> tuple[str, str]:
    """`const char *path` -> (`const char *`, `path`)."""
    m = re.match(r"^(.*?)(\w+)$", param.strip())
    if not m:
        raise ImportError(f"iscc_vdb: cannot read parameter `{param}`")
    return m[1].strip(), m[2]


def declare(name: str) -> Callable[..., Any]:
    """The library function `name`, typed from its header prototype."""
    proto = _PROTOTYPES.get(name)
    if proto is None:
        raise ImportError(f"iscc_vdb: iscc_vdb.h declares no {name}")
    head, _, params = proto.partition("(")
    ret = head[: head.rindex(name)].strip()
    fn: ctypes._CFunctionType = getattr(_lib, name)
    fn.restype = _ctype(ret, name)
    params = params.rstrip(")").strip()
    if params in ("", "void"):
        fn.argtypes = []
    else:
        fn.argtypes = [
            _ctype(_split_param(p)[0], f"{name}({p.strip()})") for p in params.split(",")
        ]
    return fn


class _C:
    """The functions this package calls."""

    version = declare("ivdb_version")
    abi_version = declare("ivdb_abi_version")
    status_str = declare("ivdb_status_str")
    open = declare("ivdb_open")
    open_read_only = declare("ivdb_open_read_only")
    drop_remote = declare("ivdb_drop_remote")
    close = declare("ivdb_close")
    add_json = declare("ivdb_add_json")
    get_json = declare("ivdb_get_json")
    search_json = declare("ivdb_search_json")
    remove = declare("ivdb_remove")
    save = declare("ivdb_save")
    rebuild = declare("ivdb_rebuild")
    copy = declare("ivdb_copy")
    search_columns = declare("ivdb_search_columns")
    free_columns = declare("ivdb_free_columns")
    compact = declare("ivdb_compact")
    info_json = declare("ivdb_info_json")
    explain_json = declare("ivdb_explain_json")
    error_code = declare("ivdb_error_code")
    error_message = declare("ivdb_error_message")
    error_free = declare("ivdb_error_free")
    free_string = declare("ivdb_free_string")
    store_open = declare("ivdb_store_open")
    store_close = declare("ivdb_store_close")
    store_put_json = declare("ivdb_store_put_json")
    store_get_json = declare("ivdb_store_get_json")
    store_delete = declare("ivdb_store_delete")
    store_entries_json = declare("ivdb_store_entries_json")
    store_get_metadata_json = declare("ivdb_store_get_metadata_json")
    store_put_metadata_json = declare("ivdb_store_put_metadata_json")
    store_info_json = declare("ivdb_store_info_json")
    iscc_id_key = declare("ivdb_iscc_id_key")
    sharded_open = declare("ivdb_sharded_open")
    sharded_close = declare("ivdb_sharded_close")
    sharded_key_bytes = declare("ivdb_sharded_key_bytes")
    sharded_add = declare("ivdb_sharded_add")
    sharded_add_generated = declare("ivdb_sharded_add_generated")
    sharded_upsert = declare("ivdb_sharded_upsert")
    sharded_remove = declare("ivdb_sharded_remove")
    sharded_get = declare("ivdb_sharded_get")
    sharded_count = declare("ivdb_sharded_count")
    sharded_len = declare("ivdb_sharded_len")
    sharded_search = declare("ivdb_sharded_search")
    sharded_maintain = declare("ivdb_sharded_maintain")
    sharded_stats_json = declare("ivdb_sharded_stats_json")
    sharded_iter_new = declare("ivdb_sharded_iter_new")
    sharded_iter_next = declare("ivdb_sharded_iter_next")
    sharded_iter_free = declare("ivdb_sharded_iter_free")
    unit_new = declare("ivdb_unit_new")
    unit_restore = declare("ivdb_unit_restore")
    unit_free = declare("ivdb_unit_free")
    unit_add = declare("ivdb_unit_add")
    unit_add_generated = declare("ivdb_unit_add_generated")
    unit_upsert = declare("ivdb_unit_upsert")
    unit_remove = declare("ivdb_unit_remove")
    unit_get = declare("ivdb_unit_get")
    unit_rows = declare("ivdb_unit_rows")
    unit_count = declare("ivdb_unit_count")
    unit_len = declare("ivdb_unit_len")
    unit_search = declare("ivdb_unit_search")
    unit_file = declare("ivdb_unit_file")
    unit_copy = declare("ivdb_unit_copy")
    unit_reset = declare("ivdb_unit_reset")
    unit_wait_partition = declare("ivdb_unit_wait_partition")
    unit_stats_json = declare("ivdb_unit_stats_json")
    unit_to_buffer = declare("ivdb_unit_to_buffer")
    unit_from_buffer = declare("ivdb_unit_from_buffer")
    buffer_free = declare("ivdb_buffer_free")
    bloom_new = declare("ivdb_bloom_new")
    bloom_load = declare("ivdb_bloom_load")
    bloom_save = declare("ivdb_bloom_save")
    bloom_free = declare("ivdb_bloom_free")
    bloom_add = declare("ivdb_bloom_add")
    bloom_contains = declare("ivdb_bloom_contains")
    bloom_clear = declare("ivdb_bloom_clear")
    bloom_stats_json = declare("ivdb_bloom_stats_json")
    hits_free = declare("ivdb_hits_free")
    rows_free = declare("ivdb_rows_free")


C = _C

#: The header's `ivdb_columns`.
Columns = struct("ivdb_columns")

#: The header's `ivdb_hits`, `ivdb_rows` and `ivdb_search_options`.
Hits = struct("ivdb_hits")
Rows = struct("ivdb_rows")
Buffer = struct("ivdb_buffer")
SearchOptions = struct("ivdb_search_options")

#: Bytes of one ISCC-ID in the columns' fixed-width ID buffers.
ISCC_ID_LEN: int = DEFINES["IVDB_ISCC_ID_LEN"]


def _statuses() -> dict[str, int]:
    """Status numbers by name, as the library names them (numbers are dense
    from 0: the first unknown one ends the list)."""
    out: dict[str, int] = {}
    for n in range(1 << 16):
        name: bytes = C.status_str(n)
        if name == b"IVDB_UNKNOWN_STATUS":
            return out
        out[name.decode("ascii")] = n
    raise ImportError("iscc_vdb: the library names too many statuses")


#: Status numbers by name (``STATUS["IVDB_CLOSED"]``), from the library.
STATUS: dict[str, int] = _statuses()

if C.abi_version() != ABI_VERSION:
    raise ImportError(
        f"iscc_vdb: libiscc_vdb has ABI version {C.abi_version()}, "
        f"its header iscc_vdb.h {ABI_VERSION}"
    )


def take_string(ptr: ctypes.c_void_p) -> str:
    """Decode a string the library handed over, then free it."""
    try:
        raw = ctypes.cast(ptr, ctypes.c_char_p).value
        return (raw or b"").decode("utf-8")
    finally:
        C.free_string(ptr)


def status_name(status: int) -> str:
    """The name of a status (`IVDB_INVALID_ISCC`)."""
    raw: bytes = C.status_str(status)
    return raw.decode("ascii")
