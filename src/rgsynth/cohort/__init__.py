"""Cohorts: the synthetic NSCLC Radiogenomics twin and (later) readers of real collections."""
