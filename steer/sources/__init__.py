"""Readers of recorded drives, one module per layout, each declaring a `READER` (see `registry`) and
returning FrameTables; `importer` turns them into Drives in a frame cache."""
