"""iscc_vdb: nearest-neighbour search for ISCC codes (ISO 24138).

The Python library of iscc-vdb: the spec's ``IsccIndex`` and ``IsccStore`` over the engine's
C ABI (``libiscc_vdb``, bundled in this package), as fast as the engine
beneath it. See :class:`IsccIndex`.
"""

from ._ffi import ABI_VERSION, STATUS
from ._vectors import BatchMatches, Matches
from .bloom import ScalableBloomFilter
from .errors import (
    ClosedError,
    CorruptError,
    DiskFullError,
    IncompatibleFormatError,
    InternalError,
    InvalidArgumentError,
    InvalidIsccError,
    InvalidJsonError,
    IoError,
    IsccVdbError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    WrongRealmError,
)
from .index import DEFAULT_COUNT, IsccIndex, drop_remote, explain, version
from .matches import (
    ChunkMatch,
    IsccBatchMatches,
    IsccMatch,
    IsccMatches,
    MatchedChunk,
    TypeChunkScore,
    UnitMatches,
    UnitScore,
)
from .nphd import NphdIndex
from .sharded import (
    ShardedIndex,
    ShardedIndex128,
    ShardedNphdIndex,
    ShardedNphdIndex128,
)
from .store import IsccStore, iscc_id_key

__all__ = [
    "ABI_VERSION",
    "DEFAULT_COUNT",
    "STATUS",
    "BatchMatches",
    "ChunkMatch",
    "ClosedError",
    "CorruptError",
    "DiskFullError",
    "IncompatibleFormatError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidIsccError",
    "InvalidJsonError",
    "IoError",
    "IsccBatchMatches",
    "IsccIndex",
    "IsccMatch",
    "IsccMatches",
    "IsccStore",
    "IsccVdbError",
    "LockedError",
    "MatchedChunk",
    "Matches",
    "NotFoundError",
    "NphdIndex",
    "ReadOnlyError",
    "ScalableBloomFilter",
    "ShardedIndex",
    "ShardedIndex128",
    "ShardedNphdIndex",
    "ShardedNphdIndex128",
    "TypeChunkScore",
    "UnitMatches",
    "UnitScore",
    "WrongRealmError",
    "drop_remote",
    "explain",
    "iscc_id_key",
    "version",
]
