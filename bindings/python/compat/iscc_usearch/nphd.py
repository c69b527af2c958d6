"""``iscc_usearch.nphd``'s public names, from iscc_vdb (see the package)."""

from iscc_vdb.nphd import NphdIndex, pad_vectors, unpad_vectors

__all__ = ["NphdIndex", "pad_vectors", "unpad_vectors"]
