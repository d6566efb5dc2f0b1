"""Readers of recorded drives, one module per layout, each returning FrameTables; `importer` turns
them into Drives in a frame cache."""
