"""Gene embeddings compared (the paper's Fig. 4): raw genes, MC-GAN's code, φ(g).

Each representation is clustered with one fixed rule (k-means, k clusters, on the codes)
and scored by the silhouette of that clustering in its own space, so "forms clusters" is
a number and not a reading of a t-SNE picture. t-SNE gives the 2-D view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from rgsynth.intensity import LUNG_WINDOW
from rgsynth.plotting import pyplot, save_png


@dataclass
class Embedding:
    """Attributes:
    name: what the codes are (``raw genes``, ``MC-GAN code``, ``ours: φ(g)``).
    codes: (S, d) the representation of each subject.
    tsne: (S, 2) its t-SNE view.
    clusters: (S,) k-means labels in code space.
    silhouette: silhouette of ``clusters`` in code space (−1…1; > 0.25 reads as structure).
    silhouette_tsne: the same labels' silhouette in the t-SNE plane.
    """

    name: str
    codes: np.ndarray
    tsne: np.ndarray
    clusters: np.ndarray
    silhouette: float
    silhouette_tsne: float


def embed(name: str, codes: np.ndarray, n_clusters: int = 3, seed: int = 0) -> Embedding:
    """Cluster and project (S, d) codes; needs S > n_clusters."""
    codes = np.asarray(codes, dtype=np.float64)  # k-means, silhouette, t-SNE: shift-free
    clusters = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(codes)
    perplexity = float(min(30.0, (len(codes) - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)
    return Embedding(
        name=name,
        codes=codes,
        tsne=tsne,
        clusters=clusters,
        silhouette=float(silhouette_score(codes, clusters)),
        silhouette_tsne=float(silhouette_score(tsne, clusters)),
    )


def embedding_figure(
    embeddings: list[Embedding],
    nodule_hu: np.ndarray,
    path: Path,
    hu_window: tuple[float, float],
    per_cluster: int = 4,
) -> Path:
    """t-SNE panels side by side, then the real nodules nearest each cluster's centre in
    the last embedding (the proposed model's), one row per cluster."""
    plt = pyplot()
    ours = embeddings[-1]
    k = int(ours.clusters.max()) + 1
    fig = plt.figure(figsize=(4 * len(embeddings), 4 + 1.1 * k))
    grid = fig.add_gridspec(2, 1, height_ratios=[4, 1.1 * k])
    top = grid[0].subgridspec(1, len(embeddings))
    colours = plt.get_cmap("tab10")
    for n, embedding in enumerate(embeddings):
        ax = fig.add_subplot(top[0, n])
        for c in range(int(embedding.clusters.max()) + 1):
            points = embedding.tsne[embedding.clusters == c]
            ax.scatter(points[:, 0], points[:, 1], s=14, color=colours(c), label=f"cluster {c + 1}")
        ax.set_title(
            f"{embedding.name}\nsilhouette {embedding.silhouette:.2f} (t-SNE plane "
            f"{embedding.silhouette_tsne:.2f})",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    bottom = grid[1].subgridspec(k, per_cluster)
    for c in range(k):
        members = np.flatnonzero(ours.clusters == c)
        centre = ours.tsne[members].mean(axis=0)
        nearest = members[np.argsort(np.linalg.norm(ours.tsne[members] - centre, axis=1))]
        for j in range(per_cluster):
            ax = fig.add_subplot(bottom[c, j])
            if j < len(nearest):
                vmin, vmax = LUNG_WINDOW.through(hu_window)
                ax.imshow(nodule_hu[nearest[j]], cmap="gray", vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"cluster {c + 1}", fontsize=8, color=colours(c))
    fig.suptitle("gene codes (t-SNE) and the real nodules of the proposed model's clusters")
    return save_png(fig, path, dpi=90)
