"""The paper's networks: generator with fusion blocks, and the three discriminators."""
