import os

from steer.workers import pool, shared_pool


def _worker_pids(workers, jobs: int = 4) -> set[int]:
    return {workers.apply(os.getpid) for _ in range(jobs)}


def test_stages_inside_a_shared_pool_use_its_workers_and_it_ends_with_the_block():
    with shared_pool(2, "spawn"):
        with pool(2, "spawn") as first:
            served = _worker_pids(first)
        with pool(1, "spawn") as second:  # fewer asked: the shared pool serves
            assert second is first
            served |= _worker_pids(second, 8)
        assert len(served) <= 2  # the same two workers served both stages
        with pool(3, "spawn") as bigger:  # more than it has: a pool of its own
            assert bigger is not first
        with pool(2, "fork") as forked:  # another start method: a pool of its own
            assert forked is not first
        assert _worker_pids(first)  # a stage's block ending left it open
    with pool(2, "spawn") as after:
        assert after is not first and not (_worker_pids(after) & served)
