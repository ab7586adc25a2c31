"""``rgsynth prepare``: cohort files → nodule and background examples in a cache (paper §3)."""
