"""The report's own figures, drawn from run-folder files: the paper's Fig. 2 and Fig. 3
from the example grid, the maps beside the truth, and the t-SNE panels coloured by the
twin's subtypes. Each returns the PNG path it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rgsynth.analysis.evaluate import map_label
from rgsynth.analysis.ground_truth import TRAIT_FEATURES
from rgsynth.intensity import NODULE_WINDOW
from rgsynth.plotting import pyplot, save_png


def model_names(examples: dict[str, np.ndarray]) -> list[str]:
    """The models (architecture names) in an example grid: compared runs first, the run
    itself last (as in the paper's Fig. 3, MC-GAN above ours)."""
    names = [k.removesuffix("_hu") for k in examples if k.endswith("_hu")]
    return [n for n in names if n not in ("donor", "background")][::-1]


def example_grid(examples: dict[str, np.ndarray], table: pd.DataFrame, path: Path) -> Path:
    """Paper Fig. 3: donor nodules (whose genes are used), backgrounds, then each model's
    synthesis from those genes on those backgrounds, same noise for both models."""
    plt = pyplot()
    rows = [("donor (real, validation)", "donor_hu"), ("background", "background_hu")]
    rows += [(map_label(name), f"{name}_hu") for name in model_names(examples)]
    columns = len(table)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(1.45 * columns + 0.8, 1.5 * len(rows)), squeeze=False
    )
    for r, (label, key) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow(
                examples[key][c], cmap="gray", vmin=NODULE_WINDOW.hu[0], vmax=NODULE_WINDOW.hu[1]
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                donor = table.iloc[c]
                ax.set_title(
                    f"{donor['donor']}\n{donor['donor max_diameter_mm']:.0f} mm", fontsize=7
                )
    fig.suptitle(
        f"Fig. 3 rebuilt: genes of each donor, painted into the background below "
        f"(window {NODULE_WINDOW.hu[0]:.0f}…{NODULE_WINDOW.hu[1]:.0f} HU)",
        fontsize=9,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def fusion_examples(
    examples: dict[str, np.ndarray], table: pd.DataFrame, model: str, path: Path
) -> Path:
    """Paper Fig. 2: for the densest (highest mean HU) and the most ground-glass donor of
    the grid, the background, the synthesis, the background weight map and the mask."""
    plt = pyplot()
    density = table["donor mean_hu"].fillna(-1000.0).to_numpy()
    glass = table["donor ground_glass_fraction"].fillna(0.0).to_numpy()
    picks = [int(np.argmax(density)), int(np.argmax(glass))]
    panels = (
        ("background", "background_hu"),
        ("synthesis", f"{model}_hu"),
        ("weight map", f"{model}_weight_map"),
        ("mask", f"{model}_mask"),
    )
    fig, axes = plt.subplots(2, 4, figsize=(7.4, 4.1), squeeze=False)
    for r, column in enumerate(picks):
        for c, (label, key) in enumerate(panels):
            ax = axes[r, c]
            image = examples[key][column]
            if key.endswith("_hu"):
                ax.imshow(image, cmap="gray", vmin=NODULE_WINDOW.hu[0], vmax=NODULE_WINDOW.hu[1])
            else:
                ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"({'abcdefgh'[4 * r + c]}) {label}", fontsize=8)
        donor = table.iloc[column]
        kind = "most solid" if r == 0 else "most ground-glass"
        axes[r, 0].set_ylabel(
            f"{kind} donor\n{donor['donor']} (GGO {donor['donor ground_glass_fraction']:.0%})",
            fontsize=7,
        )
    fig.suptitle(f"Fig. 2 rebuilt ({map_label(model)})", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def maps_beside_truth(pairs: pd.DataFrame, path: Path) -> Path:
    """Programs × traits: the truth, then each map. Colours are scaled per panel (the
    perturbation maps are in real-nodule SDs, the conventional ones Spearman ρ); the
    number is the panel's own value; * marks q < 0.05; null programs are labelled."""
    plt = pyplot()
    traits = list(TRAIT_FEATURES)
    programs = list(dict.fromkeys(pairs["program"]))
    nulls = set(pairs.loc[pairs["null_program"].astype(bool), "program"])
    truth = pairs.drop_duplicates("program trait".split()).pivot(
        index="program", columns="trait", values="true_effect"
    )
    panels = [("truth (twin)", truth.reindex(index=programs, columns=traits), None)]
    for label in dict.fromkeys(pairs["map"]):
        part = pairs[pairs["map"] == label]
        effect = part.pivot(index="program", columns="trait", values="effect")
        q = part.pivot(index="program", columns="trait", values="q")
        panels.append(
            (
                label,
                effect.reindex(index=programs, columns=traits),
                q.reindex(index=programs, columns=traits),
            )
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(2.5 * len(panels) + 1.0, 1.2 + 0.32 * len(programs)), squeeze=False
    )
    for ax, (label, values, q) in zip(axes[0], panels, strict=True):
        matrix = values.to_numpy(dtype=float)
        finite = np.isfinite(matrix)
        limit = float(np.abs(matrix[finite]).max()) if finite.any() else 1.0
        ax.imshow(matrix, cmap="RdBu_r", vmin=-(limit or 1.0), vmax=limit or 1.0, aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            star = "*" if q is not None and q.iloc[i, j] < 0.05 else ""
            text = "" if not np.isfinite(value) else f"{value:.2f}{star}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(traits)), traits, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(
            range(len(programs)),
            [f"{p} (null)" if p in nulls else p for p in programs],
            fontsize=7,
        )
        ax.set_title(label, fontsize=8)
    fig.suptitle("The radiogenomic maps beside the truth (* q < 0.05)", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def codes_by_subtype(
    embedding: pd.DataFrame, subjects: pd.DataFrame, ari: dict[str, float], path: Path
) -> Path:
    """The t-SNE panels of `rgsynth map` again, coloured by the twin's true expression
    subtype instead of k-means clusters: what a clustered code should have found."""
    plt = pyplot()
    spaces = [c.removesuffix(" tsne_x") for c in embedding.columns if c.endswith(" tsne_x")]
    subtype = subjects["subtype"].reindex(embedding["subject_id"]).to_numpy()
    fig, axes = plt.subplots(1, len(spaces), figsize=(3.6 * len(spaces), 3.6), squeeze=False)
    colours = plt.get_cmap("Set1")
    for ax, space in zip(axes[0], spaces, strict=True):
        for n, value in enumerate(sorted(set(subtype[pd.notna(subtype)]))):
            chosen = subtype == value
            ax.scatter(
                embedding.loc[chosen, f"{space} tsne_x"],
                embedding.loc[chosen, f"{space} tsne_y"],
                s=14,
                color=colours(n),
                label=f"subtype {value}",
            )
        ax.set_title(
            f"{space}\nARI of k-means vs subtypes {ari.get(space, np.nan):.2f}", fontsize=8
        )
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("The same t-SNE planes, coloured by the twin's true subtype", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=100)
