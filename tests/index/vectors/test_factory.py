"""The factory rule: which FAISS index a catalog of a given size gets."""

from __future__ import annotations

from index.vectors import choose_factory


def test_factory_rule_follows_catalog_size() -> None:
    assert choose_factory(0, 512) == "Flat"
    assert choose_factory(49_999, 512) == "Flat"
    assert choose_factory(1_000_000, 512) == "HNSW32"
    big = choose_factory(20_000_000, 512)
    assert big.startswith("IVF") and big.endswith(",SQ8")
