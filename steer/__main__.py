"""`python -m steer`: the same as the `steer` command (torchrun starts it this way: `torchrun -m steer`)."""
from steer.cli import main

main()
