"""`rgsynth synthesize`: profiles, backgrounds, pasting, file outputs and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from rgsynth.cli import app
from rgsynth.inference import Synthesizer, load_run
from rgsynth.intensity import unit_to_hu
from rgsynth.io.dicom_read import read_ct_series, read_seg_mask
from rgsynth.io.genes import read_expression_table
from rgsynth.prepare.cache import Cache, cache_prepare_config
from rgsynth.synthesize.backgrounds import load_volume, random_locations
from rgsynth.synthesize.paste import Blend, nodule_component, paste_patch
from rgsynth.synthesize.profiles import CacheGenes, edit_profile, profiles_from_table
from rgsynth.twin.tables import RNASEQ_FILENAME

runner = CliRunner()


def _synthesize(run: Path, out: Path, *args: str):
    return runner.invoke(app, ["synthesize", str(run), str(out), *args])


def _ct_folder(cohort: Path) -> Path:
    truth = json.loads((cohort / "ground_truth.json").read_text())
    return cohort / truth["subjects"][0]["ct"]["folder"]


@pytest.fixture(scope="module")
def lung_point(small_cohort: Path, train_cache: Path) -> tuple[float, float, float]:
    """A point about 10 mm inside the lung of the first subject's CT."""
    volume = load_volume(_ct_folder(small_cohort))
    config = cache_prepare_config(train_cache)
    return random_locations(volume, config, 1, np.random.default_rng(0))[0].centre_mm


def test_cache_backgrounds_every_format(
    trained_run: Path, train_cache: Path, tmp_path: Path, dicom_errors
) -> None:
    out = tmp_path / "out"
    result = _synthesize(
        trained_run, out, "--split", "all", "--backgrounds", "3", "--per-background", "2"
    )
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 6 and manifest["nodule_id"].is_unique
    assert set(manifest["background_kind"]) == {"cache"}
    assert manifest["profile_source"].eq("random donor (cache)").all()
    row = manifest.iloc[0]
    assert (out / row["preview"]).read_bytes()[:4] == b"\x89PNG"
    image = sitk.ReadImage(str(out / row["image_nifti"]))
    mask = sitk.ReadImage(str(out / row["mask_nifti"]))
    assert image.GetSize() == mask.GetSize() == (32, 32, 1)
    assert image.GetSpacing() == pytest.approx((60 / 32,) * 3)
    centre = image.TransformContinuousIndexToPhysicalPoint((15.5, 15.5, 0))
    assert centre == pytest.approx((row["x_mm"], row["y_mm"], row["z_mm"]), abs=0.01)
    hu = sitk.GetArrayFromImage(image)[0]
    assert -1000 <= hu.min() and hu.max() <= 500
    # Away from the kept mask (2 mm margin), the output is the cache's background patch.
    subject, _, index = row["background"].split(" ")
    background = Cache(train_cache).load_shard(subject)["background_image"][int(index)]
    background_hu = np.rint(unit_to_hu(background.astype(np.float32), (-1000.0, 500.0)))
    far = _distance_mm(sitk.GetArrayFromImage(mask)[0] > 0, (60 / 32,) * 2) > 2.0 + 1e-6
    np.testing.assert_array_equal(hu[far], background_hu[far])
    assert not dicom_errors(out / row["dicom_seg"])
    assert not dicom_errors(next((out / row["dicom_ct"]).glob("*.dcm")))
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["n_nodules"] == 6 and summary["checkpoint_step"] == 2
    profiles = pd.read_csv(out / "profiles.csv", index_col=0)
    assert set(profiles.index) == set(manifest["gene_profile"])


def test_a_batch_is_a_function_of_its_seed(trained_run: Path, tmp_path: Path) -> None:
    args = ("--split", "all", "--backgrounds", "2", "--per-background", "2", "--formats", "nifti")
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert _synthesize(trained_run, tmp_path / name, *args, "--seed", seed).exit_code == 0
    manifests = {n: (tmp_path / n / "manifest.csv").read_text() for n in "abc"}
    assert manifests["a"] == manifests["b"] != manifests["c"]

    def image(name: str) -> np.ndarray:
        return sitk.GetArrayFromImage(
            sitk.ReadImage(str(tmp_path / name / "nifti" / "nodule-0004_image.nii.gz"))
        )

    np.testing.assert_array_equal(image("a"), image("b"))


@pytest.mark.parametrize("model", ["trained_run", "trained_mcgan_run"])
def test_batch_composition_does_not_change_a_nodule(
    model: str, request: pytest.FixtureRequest
) -> None:
    """Also MC-GAN, whose condition is sampled: its draw comes from the seed too."""
    run = load_run(request.getfixturevalue(model))
    rng = np.random.default_rng(0)
    backgrounds = rng.uniform(-1, 1, (5, 32, 32)).astype(np.float32)
    genes = rng.normal(size=(5, run.config.model.n_genes)).astype(np.float32)
    whole = Synthesizer(run.generator, batch_size=5)(backgrounds, genes, [1, 2, 3, 4, 5])
    alone = Synthesizer(run.generator, batch_size=1)(backgrounds[3:4], genes[3:4], [4])
    np.testing.assert_allclose(whole.image[3], alone.image[0], atol=1e-5)
    other_noise = Synthesizer(run.generator)(backgrounds[3:4], genes[3:4], [99])
    assert not np.allclose(whole.image[3], other_noise.image[0])


def test_paste_into_a_dicom_ct(
    trained_run: Path, small_cohort: Path, lung_point, tmp_path: Path, dicom_errors
) -> None:
    source_dir = _ct_folder(small_cohort)
    out = tmp_path / "out"
    at = ",".join(f"{c:.3f}" for c in lung_point)
    result = _synthesize(
        trained_run, out, "--ct", str(source_dir), "--at-mm", at, "--subject", "R01-001"
    )
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out / "manifest.csv").iloc[0]
    assert row["background_kind"] == "dicom" and row["gene_profile"] == "R01-001"
    source = read_ct_series(source_dir)
    derived = read_ct_series(out / row["dicom_ct"])
    assert derived.hu.shape == source.hu.shape
    assert derived.spacing_mm == pytest.approx(source.spacing_mm)
    assert derived.origin_mm == pytest.approx(source.origin_mm)
    changed = np.argwhere(derived.hu != source.hu)
    k = int(row["slice_index"])
    assert set(changed[:, 0]) <= {k}, "only the nodule's slice may change"
    # The SEG lands on that slice, where the NIfTI mask is, and nowhere else.
    seg_mask = read_seg_mask(out / row["dicom_seg"], derived)
    nifti_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / row["mask_nifti"])))
    np.testing.assert_array_equal(seg_mask, nifti_mask > 0)
    assert row["mask_area_mm2"] > 0, "the untrained tiny model paints a large mask"
    assert set(np.argwhere(seg_mask)[:, 0]) == {k}
    # Changed pixels lie within the blend margin of the mask (2 mm, hard edge).
    far = _distance_mm(seg_mask[k], derived.spacing_mm[1:]) > 2.0 + 1e-6
    assert not far[changed[:, 1], changed[:, 2]].any()
    nifti_image = sitk.GetArrayFromImage(sitk.ReadImage(str(out / row["image_nifti"])))
    np.testing.assert_array_equal(nifti_image, derived.hu.astype(np.int16))
    first_source = pydicom.dcmread(source.files[0], stop_before_pixels=True)
    first_derived = pydicom.dcmread(derived.files[0], stop_before_pixels=True)
    assert first_derived.SeriesInstanceUID != first_source.SeriesInstanceUID
    assert first_derived.SOPInstanceUID != first_source.SOPInstanceUID
    assert first_derived.StudyInstanceUID == first_source.StudyInstanceUID
    assert first_derived.FrameOfReferenceUID == first_source.FrameOfReferenceUID
    assert list(first_derived.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert (
        first_derived.SourceImageSequence[0].ReferencedSOPInstanceUID == first_source.SOPInstanceUID
    )
    assert not dicom_errors(out / row["dicom_seg"])
    assert not dicom_errors(derived.files[k])


def _distance_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    from scipy import ndimage

    return ndimage.distance_transform_edt(~mask, sampling=spacing)


def test_paste_into_a_nifti_stored_in_another_orientation(
    trained_run: Path,
    train_cache: Path,
    small_cohort: Path,
    lung_point,
    tmp_path: Path,
    dicom_errors,
) -> None:
    """A RAS-stored NIfTI: outputs come back on its own grid, the voxel index is its own."""
    source = read_ct_series(_ct_folder(small_cohort))
    lps = sitk.GetImageFromArray(source.hu.astype(np.int16))
    lps.SetSpacing(source.spacing_mm[::-1])
    lps.SetOrigin(source.origin_mm)
    ras = sitk.DICOMOrient(lps, "RAS")
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(ras, str(nifti))
    stored = sitk.ReadImage(str(nifti))
    voxel = stored.TransformPhysicalPointToIndex(lung_point)
    gene = CacheGenes.load(train_cache).names[0]
    out = tmp_path / "out"
    result = _synthesize(
        trained_run,
        out,
        "--ct",
        str(nifti),
        "--at-voxel",
        ",".join(map(str, voxel)),
        "--set",
        f"{gene}=2",
    )
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out / "manifest.csv").iloc[0]
    assert row["gene_profile"] == f"mean+{gene}=2" and row["background_kind"] == "image"
    image = sitk.ReadImage(str(out / row["image_nifti"]))
    for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(image, attribute)() == pytest.approx(getattr(stored, attribute)())
    before, after = sitk.GetArrayFromImage(stored), sitk.GetArrayFromImage(image)
    changed = np.argwhere(before != after)
    assert set(changed[:, 0]) <= {voxel[2]}, "the stored k axis is the slice axis here"
    assert not dicom_errors(out / row["dicom_seg"])
    assert not dicom_errors(next((out / row["dicom_ct"]).glob("*.dcm")))


def test_table_profile_is_normalised_as_the_cache(
    small_cohort: Path, train_cache: Path, tmp_path: Path
) -> None:
    genes = CacheGenes.load(train_cache)
    table = small_cohort / RNASEQ_FILENAME
    profile = profiles_from_table(table, genes, ["R01-001"])[0]
    np.testing.assert_allclose(profile.values, genes.subject("R01-001").values, atol=1e-4)
    # Drop two of the model's genes from the table: reported, set to the mean.
    frame = read_expression_table(table).values
    dropped = frame.drop(index=genes.names[:2])
    partial = tmp_path / "partial.csv"
    dropped.to_csv(partial)
    profile = profiles_from_table(partial, genes, ["R01-001"])[0]
    assert profile.values[:2].tolist() == [0.0, 0.0]
    assert "2 of" in profile.notes[0] and genes.names[0] in profile.notes[0]


def test_program_edit_sets_members_by_sign(small_cohort: Path, train_cache: Path) -> None:
    from rgsynth.synthesize.profiles import read_gene_sets

    genes = CacheGenes.load(train_cache)
    sets = read_gene_sets(small_cohort / "ground_truth.json")
    name = next(n for n, s in sets.items() if set(s.genes) & set(genes.names))
    edited = edit_profile(
        genes.subject("R01-001"), genes, program_edits=[(name, 2.0)], gene_sets=sets
    )
    column = {g: n for n, g in enumerate(genes.names)}
    for gene, sign in zip(sets[name].genes, sets[name].signs, strict=True):
        if gene in column:
            assert edited.values[column[gene]] == 2.0 * sign
    assert edited.name == f"R01-001+{name}=2"


def test_only_the_central_mask_part_is_kept() -> None:
    mask = np.zeros((32, 32), bool)
    mask[0:6, 0:20] = True  # a large fragment on the patch edge
    mask[14:19, 15:18] = True  # the nodule, smaller, at the centre
    kept, dropped = nodule_component(mask)
    assert dropped == 1 and kept.sum() == 15 and kept[16, 16]


def test_paste_geometry_and_feathering() -> None:
    """An off-centre mask lands at its patient position; hard keeps the source exactly
    outside the margin, feathering blends a band around it."""
    slice_hu = np.full((100, 120), -800.0, np.float32)
    spacing, origin, centre = (0.5, 0.7), (-40.0, -30.0), (2.0, -5.0)
    patch_hu = np.full((32, 32), 40.0, np.float32)
    patch_mask = np.zeros((32, 32), np.float32)
    patch_mask[4:8, 20:24] = 1.0  # rows 4–7 (y), columns 20–23 (x): up and right of centre
    hard = paste_patch(
        slice_hu, spacing, origin, centre, patch_hu, patch_mask, 30.0, Blend(margin_mm=0)
    )
    rows, cols = np.nonzero(hard.mask)
    voxel = 30.0 / 32
    y_mm = origin[1] + (hard.rows.start + rows.mean()) * spacing[0]
    x_mm = origin[0] + (hard.cols.start + cols.mean()) * spacing[1]
    assert x_mm == pytest.approx(centre[0] + (21.5 - 15.5) * voxel, abs=0.4)
    assert y_mm == pytest.approx(centre[1] + (5.5 - 15.5) * voxel, abs=0.4)
    outside = ~hard.mask
    assert np.all(hard.hu[outside] == -800.0) and np.all(hard.hu[hard.mask] == 40.0)
    soft = paste_patch(
        slice_hu,
        spacing,
        origin,
        centre,
        patch_hu,
        patch_mask,
        30.0,
        Blend(margin_mm=0, feather_mm=1.0),
    )
    band = (soft.alpha > 0) & (soft.alpha < 1)
    assert band.any() and np.all(soft.alpha[soft.mask] == 1.0)
    assert np.all((soft.hu[band] > -800) & (soft.hu[band] < 40))
    far = _distance_mm(soft.mask, spacing) > 3.0 + 0.01
    assert np.all(soft.hu[far] == -800.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at-mm", "9999,0,0"], "lies outside the volume"),
        (["--at-voxel", "CENTRE"], "is not inside the lung"),
        (["--at-mm", "1,2"], "expected three numbers"),
        (["--subject", "R01-999", "--at-voxel", "CENTRE"], "no gene profile for this subject"),
        (["--set", "NOTAGENE=1", "--at-voxel", "CENTRE"], "is not among the model's"),
        (["--set-program", "P1=1", "--at-voxel", "CENTRE"], "needs --gene-sets"),
    ],
)
def test_bad_requests_are_one_line_errors(
    trained_run: Path, small_cohort: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    source_dir = _ct_folder(small_cohort)
    size = sitk.ReadImage(str(next(source_dir.glob("*.dcm")))).GetSize()
    centre = f"{size[0] // 2},{size[1] // 2},0"
    args = [a.replace("CENTRE", centre) for a in extra]
    out = tmp_path / "out"
    result = _synthesize(trained_run, out, "--ct", str(source_dir), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1, result.output
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_wrong_gene_table_and_foreign_cache_are_refused(
    trained_run: Path, train_cache: Path, tmp_path: Path
) -> None:
    table = tmp_path / "other_genes.csv"
    pd.DataFrame({"S1": [1.0, 2.0]}, index=["GENE_A", "GENE_B"]).to_csv(table)
    out = tmp_path / "out"
    result = _synthesize(trained_run, out, "--expression", str(table), "--split", "all")
    assert result.exit_code == 2 and "genes are not in this table" in result.output, result.output
    other = tmp_path / "other_cache"
    shutil.copytree(train_cache, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["settings_fingerprint"] = "0" * 16
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = _synthesize(trained_run, out, "--cache", str(other))
    assert result.exit_code == 2 and "made from another cache" in result.output, result.output
    assert not out.exists()


def test_existing_output_is_kept_unless_forced(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("--split", "all", "--backgrounds", "1", "--formats", "png")
    assert _synthesize(trained_run, out, *args).exit_code == 0
    before = (out / "manifest.csv").read_text()
    result = _synthesize(trained_run, out, *args, "--seed", "3")
    assert result.exit_code == 2 and "already exists" in result.output
    assert (out / "manifest.csv").read_text() == before
    assert _synthesize(trained_run, out, *args, "--seed", "3", "--force").exit_code == 0
    assert (out / "manifest.csv").read_text() != before
