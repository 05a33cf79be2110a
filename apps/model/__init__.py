"""Baton's message classifier: its label set, its training data and (later) `baton model train|eval`.

The training data are public datasets committed under `models/sources/` (see `models/DATA.md`);
`sources` reads them, `mapping` maps every source label onto Baton's labels (`labels`), and `dataset`
gathers them and splits them deterministically.
"""
