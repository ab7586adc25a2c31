"""Radiogenomic maps and their evaluation: features, embeddings, statistics, scores."""
