"""``iscc_usearch.bloom``'s public class, from iscc_vdb (see the package)."""

from iscc_vdb.bloom import ScalableBloomFilter

__all__ = ["ScalableBloomFilter"]
