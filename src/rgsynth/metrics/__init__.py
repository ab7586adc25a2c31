"""Scores as flat records (records.py), a registry of the functions that compute them
(registry.py), what they are computed from (context.py), and the built-in metrics
(builtin.py). ``rgsynth evaluate`` runs every registered metric."""
