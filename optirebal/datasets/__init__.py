"""Data shipped with optirebal: real market histories (offline, with provenance) and a
generated book of households."""

from optirebal.datasets.book import Book, generate, load_book

__all__ = ["Book", "generate", "load_book"]
