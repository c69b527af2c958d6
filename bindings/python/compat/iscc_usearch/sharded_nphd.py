"""``iscc_usearch.sharded_nphd``'s public names, from iscc_vdb (see the package)."""

from iscc_vdb.sharded import ShardedNphdIndex, ShardedNphdIndex128, ShardedNphdIndexedVectors

__all__ = ["ShardedNphdIndex", "ShardedNphdIndex128", "ShardedNphdIndexedVectors"]
