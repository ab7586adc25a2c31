"""``prepare`` end to end: the cache's contents, its split and genes, resume and refusal,
and the folder cohort giving the same examples as the DICOM one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from rgsynth.config import PrepareConfig
from rgsynth.io import folder, tcia
from rgsynth.io.source import InputError
from rgsynth.prepare.cache import SHARD_KEYS, Cache, CacheMismatchError
from rgsynth.prepare.run import find_inputs, prepare_cache

CONFIG = PrepareConfig(size=32, background_centres=2, background_slices=5, val_fraction=0.34)


def run(cohort: Path, out: Path, config: PrepareConfig = CONFIG, **options) -> tuple[dict, list]:
    lines: list[str] = []
    options.setdefault("workers", 1)
    manifest = prepare_cache(find_inputs(cohort), out, config, echo=lines.append, **options)
    return manifest, lines


@pytest.fixture(scope="module")
def prepared(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepare") / "cache"
    manifest, _ = run(tiny_cohort, out, workers=2)
    return out, manifest


def test_cache_holds_every_subject_with_a_seg(prepared, tiny_truth: dict) -> None:
    out, manifest = prepared
    truth = {s["subject_id"]: s for s in tiny_truth["subjects"]}
    kept = {s["subject_id"] for s in manifest["subjects"]}
    assert kept == {sid for sid, s in truth.items() if s["has_seg"]}
    excluded = {e["subject_id"] for e in manifest["skipped"] if e["status"] == "excluded"}
    assert excluded == {sid for sid, s in truth.items() if not s["has_seg"]}
    with_genes = {sid for sid in kept if truth[sid]["has_rnaseq"]}
    assert {s["subject_id"] for s in manifest["subjects"] if s["has_genes"]} == with_genes
    assert manifest["unmatched"]["images_without_genes"] == sorted(kept - with_genes)
    assert (out / "qc_montage.png").read_bytes()[:4] == b"\x89PNG"


def test_examples_are_windowed_slices_with_their_masks(prepared, tiny_truth: dict) -> None:
    out, manifest = prepared
    cache = Cache(out)
    truth = {s["subject_id"]: s for s in tiny_truth["subjects"]}
    size, voxel_mm3 = CONFIG.size, CONFIG.voxel_mm**3
    for subject in manifest["subjects"]:
        shard = cache.load_shard(subject["subject_id"])
        assert set(shard) == set(SHARD_KEYS)
        image, mask = shard["nodule_image"], shard["nodule_mask"]
        assert image.dtype == np.float16 and image.shape[1:] == (size, size)
        assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert set(np.unique(mask)) <= {0, 1} and mask.any(axis=(1, 2)).all()
        assert len(image) == subject["n_nodule_slices"]
        volume = mask.sum() * voxel_mm3
        assert volume == pytest.approx(
            truth[subject["subject_id"]]["nodule"]["mask_volume_mm3"], rel=0.35
        )
        # The nodule sits at the VOI centre: its mask centroid is within 2 voxels of it.
        rows, cols = np.nonzero(mask.max(axis=0))
        assert abs(rows.mean() - size / 2) < 2 and abs(cols.mean() - size / 2) < 2
        backgrounds = shard["background_image"]
        assert len(backgrounds) == subject["n_background_slices"] <= 10
        assert shard["background_lung"].mean() > 0.2


def test_backgrounds_never_show_the_nodule(prepared, tiny_cohort: Path) -> None:
    """No nodule voxel of the source scan lies in any background slice's 60 mm square."""
    out, manifest = prepared
    cache = Cache(out)
    sources = {s.subject_id: s for s in tcia.discover(tiny_cohort)[0]}
    half, thickness = CONFIG.voi_mm / 2, CONFIG.voxel_mm
    for subject in manifest["subjects"]:
        images = tcia.load(sources[subject["subject_id"]])
        nodule_mm = images.index_to_mm(np.argwhere(images.nodule_mask))  # (n, 3) x, y, z
        centres = cache.load_shard(subject["subject_id"])["background_centre_mm"]
        assert len(centres) > 0
        for centre in centres:
            inside = (np.abs(nodule_mm[:, :2] - centre[:2]) < half).all(axis=1) & (
                np.abs(nodule_mm[:, 2] - centre[2]) < thickness / 2
            )
            assert not inside.any(), (subject["subject_id"], centre)


def test_split_and_genes(prepared) -> None:
    out, manifest = prepared
    train, val = set(manifest["split"]["train"]), set(manifest["split"]["val"])
    assert not train & val
    assert train | val == {s["subject_id"] for s in manifest["subjects"]}
    assert all(
        s["split"] == ("train" if s["subject_id"] in train else "val") for s in manifest["subjects"]
    )
    with np.load(out / "genes.npz") as stored:
        ids = list(stored["subject_ids"])
        values = stored["values"]
        assert list(stored["gene_names"]) == manifest["genes"]["names"]
        np.testing.assert_allclose(stored["mean"], manifest["genes"]["mean"], atol=1e-5)
        assert values.shape == (len(ids), manifest["genes"]["n_kept"])
        on_train = values[[i for i, s in enumerate(ids) if s in train]]
    np.testing.assert_allclose(on_train.mean(axis=0), 0.0, atol=1e-4)
    assert val & set(ids), "the tiny cohort should put a subject with genes in validation"
    stats = (out / "gene_stats.csv").read_text().splitlines()
    assert stats[0] == "gene,mean,sd" and len(stats) == manifest["genes"]["n_kept"] + 1


def test_up_to_date_then_settings_change_is_refused(prepared, tiny_cohort: Path) -> None:
    out, manifest = prepared
    again, lines = run(tiny_cohort, out)
    assert again == manifest and "up to date" in lines[-1]
    other = PrepareConfig(**{**CONFIG.to_dict(), "size": 64})
    with pytest.raises(CacheMismatchError, match=r"settings\.size \(32 in the cache, 64 now\)"):
        run(tiny_cohort, out, other)


def test_changed_input_files_are_named(
    small_cohort: Path, cohort_copy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cache"
    run(cohort_copy, out)
    victim = next((cohort_copy / "NSCLC Radiogenomics" / "R01-002").rglob("*.dcm"))
    os.utime(victim, ns=(0, 0))
    with pytest.raises(CacheMismatchError, match="inputs: files changed for R01-002"):
        run(cohort_copy, out)
    manifest, _ = run(cohort_copy, out, force=True)
    assert len(manifest["subjects"]) == 3


def test_interrupted_run_resumes_without_redoing_subjects(
    cohort_copy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cache"
    ct = sorted((cohort_copy / "NSCLC Radiogenomics" / "R01-002").rglob("1-004.dcm"))[0]
    good = ct.read_bytes()
    ct.write_bytes(good[:300])  # subjects run in ID order: AMC-001, R01-001, then this one
    with pytest.raises(InputError, match="R01-002"):
        run(cohort_copy, out)
    cache = Cache(out)
    assert not cache.is_complete
    finished = {sid: cache.shard_path(sid).stat().st_mtime_ns for sid in ("AMC-001", "R01-001")}
    ct.write_bytes(good)
    os.utime(ct, ns=(1, 1))  # the fix changes R01-002's inputs only
    with pytest.raises(CacheMismatchError, match="files changed for R01-002"):
        run(cohort_copy, out)
    manifest, lines = run(cohort_copy, out, force=True)
    assert "resuming: 2 subjects already in the cache, 1 to do" in lines
    assert {sid: cache.shard_path(sid).stat().st_mtime_ns for sid in finished} == finished
    assert len(manifest["subjects"]) == 3


def test_corrupt_shard_is_recomputed(cohort_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    first, _ = run(cohort_copy, out)
    cache = Cache(out)
    before = cache.load_shard("R01-001")
    cache.shard_path("R01-001").write_bytes(b"PK\x03\x04 truncated")
    (out / "manifest.json").unlink()
    second, lines = run(cohort_copy, out)
    assert "resuming: 2 subjects already in the cache, 1 to do" in lines
    after = cache.load_shard("R01-001")
    for key in SHARD_KEYS:
        np.testing.assert_array_equal(after[key], before[key])
    assert second["split"] == first["split"]


def _folder_cohort(small_cohort: Path, out: Path, flip: str | None = None) -> None:
    """The small twin as images/ + masks/ (one NRRD), genes as a subjects × genes CSV."""
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    sources, _ = tcia.discover(small_cohort)
    for n, source in enumerate(sources):
        images = tcia.load(source)
        suffix = ".nrrd" if n == 0 else ".nii.gz"
        for array, folder_name in (
            (images.hu, "images"),
            (images.nodule_mask.astype(np.uint8), "masks"),
        ):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing(tuple(float(s) for s in images.spacing_mm[::-1]))
            image.SetOrigin(images.origin_mm)
            if flip == source.subject_id:  # same anatomy stored mirrored left-right
                image = sitk.Flip(image, [True, False, False])
            sitk.WriteImage(image, str(out / folder_name / f"{source.subject_id}{suffix}"))
    table = find_inputs(small_cohort).expression
    from rgsynth.io.genes import read_expression_table

    read_expression_table(table).values.T.to_csv(out / "expression.csv", na_rep="NA")


def test_folder_cohort_gives_the_same_examples(small_cohort: Path, tmp_path: Path) -> None:
    _folder_cohort(small_cohort, tmp_path / "folder", flip="R01-001")
    inputs = find_inputs(tmp_path / "folder")
    assert inputs.kind == "folder" and inputs.expression.name == "expression.csv"
    from_folder, lines = run(tmp_path / "folder", tmp_path / "folder-cache")
    assert "expression table: expression.csv, subjects × genes" in lines
    from_dicom, _ = run(small_cohort, tmp_path / "dicom-cache")
    assert from_folder["split"] == from_dicom["split"]
    assert from_folder["genes"]["n_kept"] == from_dicom["genes"]["n_kept"]
    for subject in from_dicom["subjects"]:
        a = Cache(tmp_path / "dicom-cache").load_shard(subject["subject_id"])
        b = Cache(tmp_path / "folder-cache").load_shard(subject["subject_id"])
        for key in ("nodule_image", "nodule_mask", "background_image"):
            np.testing.assert_allclose(
                a[key].astype(np.float32), b[key].astype(np.float32), atol=2e-3
            )


def test_folder_duplicate_ids_and_orphan_masks(tmp_path: Path) -> None:
    for name in (
        "images/R01-001.nii.gz",
        "images/R01-001.nrrd",
        "masks/R01-001.nii.gz",
        "masks/R01-050.nii.gz",
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    sources, problems = folder.discover(tmp_path)
    assert sources == []
    assert [(p.subject_id, Path(p.path).name) for p in problems] == [
        ("R01-001", "R01-001.nrrd"),
        ("R01-050", "R01-050.nii.gz"),
    ]
    assert "duplicated subject ID" in problems[0].problem


def test_refuses_a_folder_that_is_not_a_cache(tiny_cohort: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CacheMismatchError, match="not an rgsynth cache"):
        run(tiny_cohort, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    shutil.rmtree(tmp_path / "subjects", ignore_errors=True)
