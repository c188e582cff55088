"""The participant-side ML kit: model specs and weights (``models``), per-site data sets (``data``),
local training and evaluation (``training``). Pure and in-memory: no files, no network, no globals.

Submodules are imported explicitly (``from fedstream.ml.data import load_site``) so that code which only
needs data or specs does not pay for importing torch.
"""
