"""Data shipped with optirebal: real market histories (offline, with provenance) and a
generated book of households."""
