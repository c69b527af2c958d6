"""``iscc_usearch.nphd``'s public class, from iscc_vdb (see the package)."""

from iscc_vdb.nphd import NphdIndex

__all__ = ["NphdIndex"]
