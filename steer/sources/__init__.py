"""Readers of recorded drives, one module per layout, each returning FrameTables; `importer` turns
them into Drives in a frame cache."""

# The options each format takes, beyond size, crop and the gap that splits drives.
FORMAT_OPTIONS = {
    "udacity-sim": {"cameras", "side_correction", "steering_rad_per_unit"},
    "donkey": {"keep_deleted", "steering_rad_per_unit", "throttle_scale"},
    "udacity": {"camera", "signals_only"},
    "deeptesla": {"wheel_unit", "signals_only"},
    "sullychen": {"fps", "signals_only"},
    "generic": {"signals", "frames", "csv_file", "frame", "frame_base", "time", "time_unit", "fps"},
}
