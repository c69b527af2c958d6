"""``iscc_usearch.sharded``'s public names, from iscc_vdb (see the package)."""

from iscc_vdb.sharded import (
    DEFAULT_SHARD_SIZE,
    UUID_DTYPE,
    ShardedIndex,
    ShardedIndex128,
    ShardedIndexedKeys,
    ShardedIndexedVectors,
)

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "UUID_DTYPE",
    "ShardedIndex",
    "ShardedIndex128",
    "ShardedIndexedKeys",
    "ShardedIndexedVectors",
]
