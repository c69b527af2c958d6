"""An adapter that changes only the import: ``iscc_usearch`` names bound to
iscc_vdb's classes, so iscc-usearch's own test suite runs against them
(``run_iscc_usearch_tests.sh``). Not installed with the package."""

from iscc_vdb.bloom import ScalableBloomFilter
from iscc_vdb.nphd import NphdIndex
from iscc_vdb.sharded import (
    ShardedIndex,
    ShardedIndex128,
    ShardedNphdIndex,
    ShardedNphdIndex128,
)

__all__ = [
    "NphdIndex",
    "ScalableBloomFilter",
    "ShardedIndex",
    "ShardedIndex128",
    "ShardedNphdIndex",
    "ShardedNphdIndex128",
]
