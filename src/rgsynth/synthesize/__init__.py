"""`rgsynth synthesize`: gene-conditioned nodules into cache patches or a user CT."""
