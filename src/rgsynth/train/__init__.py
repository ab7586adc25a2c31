"""``rgsynth train``: the loop, checkpoints, distributed set-up, logging and sample grids."""
