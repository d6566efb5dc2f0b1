"""steer.allocator: the memory a step frees comes back without page faults."""
import json
import subprocess
import sys

import pytest

from steer.allocator import keep_freed_memory

# a fresh process: the test's own has its allocator set by whatever ran before
FAULTS = """
import json, resource, sys, torch
from steer.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "1" else False
def step():
    torch.ones(16 << 20).sum()  # 64 MB, freed at once: a training step's activations
for _ in range(20):  # the heap settles: small blocks find their places around the large one
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(json.dumps({"kept": kept, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 20}))
"""


def _faults(kept: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", FAULTS, str(int(kept))], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not keep_freed_memory(), reason="the C library is not glibc: steer leaves its allocator alone")
def test_a_freed_block_is_reused_without_page_faults():
    as_it_comes, kept = _faults(False), _faults(True)
    assert as_it_comes["faults"] > 4000, "glibc maps a 64 MB block fresh each time: 16,384 pages to fault in"
    assert kept["kept"] and kept["faults"] < 100
