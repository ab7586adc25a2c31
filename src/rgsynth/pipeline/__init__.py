"""Stages with one generic "is this current?" rule, and a runner for a list of them."""
