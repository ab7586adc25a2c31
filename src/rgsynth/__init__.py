"""rgsynth: radiogenomic synthesis with a multi-conditional GAN (Xu et al., arXiv 1907.03728)."""

__version__ = "0.1.0"
