"""The one kind of error a user causes and can fix: `steer` prints its message as one line and exits 1."""
from __future__ import annotations


class SteerError(Exception):
    """A refusal with a message that names the file and line, frame, drive or flag, and what to do."""
