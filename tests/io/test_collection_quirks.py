"""The real download's quirks: each one breaks a naive reader (the negative control) and
ours reads it right. Encoding quirks give masks and HU exactly equal to the clean twin's,
uneven slices a Dice of at least 0.95."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import sqlite3
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from rgsynth.io import tcia
from rgsynth.io.dicom_read import read_ct_image, read_ct_series, read_header, read_seg_mask
from rgsynth.io.tcia import load_all
from rgsynth.twin import quirks

FIXTURES = Path(__file__).parents[1] / "fixtures"


# ----------------------------------------------------------------- one quirk at a time


def _naive_index_order(seg: pydicom.Dataset, n_slices: int) -> np.ndarray:
    """Frame k on slice k: what a reader that trusts the frame order gets."""
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    mask = np.zeros((n_slices, *frames.shape[1:]), dtype=bool)
    mask[: frames.shape[0]] = frames[:n_slices] > 0
    return mask


def _naive_highdicom(path: Path, ct_uids: list[str]) -> np.ndarray:
    """highdicom's plain reader, indexing frames by their source instances."""
    seg = hd.seg.segread(path)
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=ct_uids,
        segment_numbers=[1],
        assert_missing_frames_are_empty=True,
    )
    return pixels[..., 0] > 0


def _naive_per_frame_segment(seg: pydicom.Dataset) -> list[int]:
    """Each frame's segment read from its own functional groups only."""
    return [
        int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for item in seg.PerFrameFunctionalGroupsSequence
    ]


def _naive_own_geometry(seg: pydicom.Dataset, ct_z: np.ndarray) -> np.ndarray:
    """Frames placed through the SEG's own ImageOrientationPatient (its slice normal)."""
    orientation = np.array(
        seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        dtype=float,
    )
    normal = np.cross(orientation[:3], orientation[3:])
    if not np.isclose(np.linalg.norm(normal), 1.0):
        raise ValueError(f"SEG orientation has no unit normal: {orientation.tolist()}")
    along = [
        float(np.dot(item.PlanePositionSequence[0].ImagePositionPatient, normal))
        for item in seg.PerFrameFunctionalGroupsSequence
    ]
    return np.searchsorted(ct_z, along)


def _naive_tumour_segment(seg: pydicom.Dataset) -> int:
    """The segment whose label says nodule or tumour."""
    for item in seg.SegmentSequence:
        if any(word in str(item.SegmentLabel).lower() for word in ("nodule", "tumor", "tumour")):
            return int(item.SegmentNumber)
    raise LookupError("no segment labelled as a nodule")


def _fails(call) -> bool:
    try:
        call()
    except Exception:
        return True
    return False


@pytest.fixture
def clean_case(tmp_path: Path, write_asymmetric_case):
    """The L-shaped CT + one-frame-per-slice SEG, with the CT datasets and the SEG as a
    plain pydicom dataset to spoil."""
    hu, mask, _, _ = write_asymmetric_case(tmp_path / "ct", tmp_path / "seg.dcm", True, "slicer")
    ct = [pydicom.dcmread(p) for p in sorted((tmp_path / "ct").iterdir())]
    ct.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return tmp_path, hu, mask, ct, pydicom.dcmread(tmp_path / "seg.dcm")


def _read_ours(folder: Path, seg: pydicom.Dataset) -> np.ndarray:
    seg.save_as(folder / "quirk.dcm")
    return read_seg_mask(folder / "quirk.dcm", read_ct_series(folder / "ct"))


def test_empty_frames_omitted_need_more_than_frame_order(clean_case) -> None:
    folder, _, mask, _, seg = clean_case
    quirks.omit_empty_frames(seg)
    assert int(seg.NumberOfFrames) == 3 < mask.shape[0]
    assert not np.array_equal(_naive_index_order(seg, mask.shape[0]), mask)
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_frames_cropped_to_the_nodule_and_reversed(clean_case) -> None:
    folder, _, mask, _, seg = clean_case
    quirks.crop_frames_to_nodule(seg)
    quirks.reverse_frames(seg)
    stack = [
        int(i.FrameContentSequence[0].InStackPositionNumber)
        for i in seg.PerFrameFunctionalGroupsSequence
    ]
    assert stack == [3, 2, 1]
    assert not np.array_equal(_naive_index_order(seg, mask.shape[0]), mask)
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_shared_references_only_break_highdicom_and_are_placed_by_position(clean_case) -> None:
    folder, _, mask, ct, seg = clean_case
    quirks.crop_frames_to_nodule(seg)
    quirks.shared_references_only(seg, ct)
    seg.save_as(folder / "quirk.dcm")
    uids = [str(ds.SOPInstanceUID) for ds in ct]
    with pytest.raises(RuntimeError, match="source frames"):
        _naive_highdicom(folder / "quirk.dcm", uids)
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_segment_identified_only_in_the_shared_groups(clean_case) -> None:
    folder, _, mask, ct, seg = clean_case
    quirks.shared_references_only(seg, ct)
    quirks.shared_segment_identification(seg)
    assert _fails(lambda: _naive_per_frame_segment(seg))
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_invalid_seg_orientation_is_ignored_for_the_ct_geometry(clean_case) -> None:
    folder, _, mask, ct, seg = clean_case
    quirks.shared_references_only(seg, ct)
    quirks.invalid_orientation(seg)
    ct_z = np.array([float(ds.ImagePositionPatient[2]) for ds in ct])
    assert _fails(lambda: _naive_own_geometry(seg, ct_z))
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_a_duplicated_reference_breaks_highdicom_and_is_read(clean_case) -> None:
    folder, _, mask, ct, seg = clean_case
    quirks.duplicate_reference(seg)
    seg.save_as(folder / "quirk.dcm")
    with pytest.raises(sqlite3.IntegrityError):
        _naive_highdicom(folder / "quirk.dcm", [str(ds.SOPInstanceUID) for ds in ct])
    from rgsynth.io.seg_read import read_seg_frames

    assert any("more than once" in note for note in read_seg_frames(folder / "quirk.dcm").notes)
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_meaningless_segment_label(clean_case) -> None:
    folder, _, mask, _, seg = clean_case
    quirks.meaningless_label(seg)
    assert _fails(lambda: _naive_tumour_segment(seg))
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def test_epad_seg_without_referenced_series_through_the_tcia_reader(
    tmp_path: Path, write_asymmetric_case
) -> None:
    """Every ePAD quirk at once, beside a decoy CT series on the same frame of reference
    with a lower series number: the CT is the series holding the instances named."""
    study = tmp_path / "R01-999" / "study"
    hu, mask, _, _ = write_asymmetric_case(
        study / "3-ct", study / "clean" / "seg.dcm", False, "slicer"
    )
    ct = sorted(
        (pydicom.dcmread(p) for p in (study / "3-ct").iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    (study / "2-decoy").mkdir()
    for k, ds in enumerate(ct):
        decoy = copy.deepcopy(ds)
        decoy.SeriesNumber, decoy.SeriesDescription = 2, "CTAC 3.75 Thick"
        decoy.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["decoy"])
        decoy.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["decoy", str(k)])
        decoy.PixelData = (np.frombuffer(ds.PixelData, np.int16) + 100).astype(np.int16).tobytes()
        decoy.save_as(study / "2-decoy" / f"{k}.dcm")
    seg = pydicom.dcmread(study / "clean" / "seg.dcm")
    quirks.epad_seg(seg, ct, dt.datetime(1999, 11, 11, 22, 18), duplicate=True)
    (study / "clean" / "seg.dcm").unlink()
    (study / "clean").rmdir()
    (study / "1000-epad").mkdir()
    seg.save_as(study / "1000-epad" / "1-1.dcm")
    assert seg.SeriesDescription == "ePAD Generated DSO Nov-11-2218"
    assert "ReferencedSeriesSequence" not in seg
    assert not [ds for ds in ct if ds.SeriesDate == seg.SeriesDate]  # no pairing by date
    assert (str(seg.StudyID), int(seg.SeriesNumber)) == ("1", 1000)

    headers = [read_header(p) for p in sorted(study.rglob("*.dcm"))]
    naive_ct = min((h for h in headers if h.modality == "CT"), key=lambda h: h.series_number)
    assert naive_ct.path.parent.name == "2-decoy"
    assert not any("segmentation" in h.series_description.lower() for h in headers)

    sources, problems = tcia.discover(tmp_path)
    assert problems == []
    images = tcia.load(sources[0])
    np.testing.assert_array_equal(images.hu, hu.astype(np.float32))
    np.testing.assert_array_equal(images.nodule_mask, mask)
    assert any("patient position" in note for note in images.notes)
    assert any("more than once" in note for note in images.notes)


# ----------------------------------------------------------------- CT encodings


def _spoiled_series(tmp_path: Path, write_asymmetric_case, spoil) -> tuple[np.ndarray, Path]:
    hu, _, _, _ = write_asymmetric_case(tmp_path / "ct", tmp_path / "seg.dcm", False, "slicer")
    paths = sorted((tmp_path / "ct").iterdir())
    datasets = [pydicom.dcmread(p) for p in paths]
    spoil(datasets)
    for ds, path in zip(datasets, paths, strict=True):
        ds.save_as(path)
    return hu, tmp_path / "ct"


def _naive_first_file_rescale(folder: Path) -> np.ndarray:
    """Every slice rescaled with the first file's slope and intercept."""
    files = sorted(
        folder.iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2])
    )
    first = pydicom.dcmread(files[0])
    slope, intercept = float(first.RescaleSlope), float(first.RescaleIntercept)
    return np.stack([pydicom.dcmread(p).pixel_array * slope + intercept for p in files])


def test_per_file_rescale_reads_exactly(tmp_path: Path, write_asymmetric_case) -> None:
    hu, folder = _spoiled_series(tmp_path, write_asymmetric_case, quirks.per_file_rescale)
    slopes = {str(pydicom.dcmread(p).RescaleSlope) for p in folder.iterdir()}
    assert len(slopes) > 1
    assert not np.array_equal(_naive_first_file_rescale(folder), hu)
    np.testing.assert_array_equal(read_ct_series(folder).hu, hu.astype(np.float32))


def test_unsigned_12_bit_pixels_read_exactly(tmp_path: Path, write_asymmetric_case) -> None:
    def spoil(datasets):
        for ds in datasets:  # bone in a corner: a stored value above 2047
            values = np.frombuffer(ds.PixelData, np.int16).copy().reshape(ds.Rows, ds.Columns)
            values[0, 0] = 2900 + 1024
            ds.PixelData = values.tobytes()
        quirks.unsigned_12_bit(datasets)

    hu, folder = _spoiled_series(tmp_path, write_asymmetric_case, spoil)
    hu = hu.copy()
    hu[:, 0, 0] = 2900
    first = pydicom.dcmread(sorted(folder.iterdir())[0])
    assert (int(first.PixelRepresentation), int(first.BitsStored)) == (0, 12)
    raw = first.pixel_array.astype(np.int32)
    signed_12 = np.where(raw >= 2048, raw - 4096, raw)  # a reader that assumes signed pixels
    assert signed_12[0, 0] + float(first.RescaleIntercept) != 2900
    np.testing.assert_array_equal(read_ct_series(folder).hu, hu.astype(np.float32))


def test_rle_lossless_ct_reads_exactly(tmp_path: Path, write_asymmetric_case) -> None:
    hu, folder = _spoiled_series(tmp_path, write_asymmetric_case, quirks.rle_lossless)
    first = pydicom.dcmread(sorted(folder.iterdir())[0])
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    naive = np.frombuffer(first.PixelData[: first.Rows * first.Columns * 2], np.int16)
    assert naive.size != hu[0].size or not np.array_equal(naive.reshape(hu[0].shape), hu[0] + 1024)
    np.testing.assert_array_equal(read_ct_series(folder).hu, hu.astype(np.float32))


def test_jpeg_lossless_fixture_reads_exactly() -> None:
    """JPEG Lossless SV1, which pydicom cannot encode (the committed fixture) and, without
    a GPL plugin, cannot decode: GDCM, through SimpleITK, reads it bit-exact."""
    folder = FIXTURES / "jpeg_lossless_ct" / "series"
    expected = np.load(FIXTURES / "jpeg_lossless_ct" / "hu.npy")
    first = pydicom.dcmread(sorted(folder.iterdir())[0])
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLosslessSV1
    if not any(importlib.util.find_spec(m) for m in ("pylibjpeg", "gdcm")):
        with pytest.raises(RuntimeError, match="Unable to decompress"):
            first.pixel_array  # noqa: B018 - pydicom alone has no JPEG Lossless decoder
    np.testing.assert_array_equal(read_ct_series(folder).hu, expected.astype(np.float32))


def test_a_sagittal_image_in_an_axial_series_is_left_out(
    tmp_path: Path, write_asymmetric_case
) -> None:
    hu, folder = _spoiled_series(tmp_path, write_asymmetric_case, lambda datasets: None)
    odd = pydicom.dcmread(sorted(folder.iterdir())[0])
    odd.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    odd.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["sagittal"])
    odd.save_as(folder / "1-999.dcm")
    files = sorted(str(p) for p in folder.iterdir())
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    naive = sitk.GetArrayFromImage(reader.Execute())
    assert naive.shape[0] != hu.shape[0]  # the sagittal image stacked in as a slice
    stack = read_ct_image([read_header(Path(p)) for p in files])
    assert any("another orientation" in note for note in stack.notes)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(stack.image), hu.astype(np.float32))


# ----------------------------------------------------------------- the whole twin


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_collection_twin_reads_as_the_clean_twin(
    tiny_cohort: Path, collection_cohort: Path
) -> None:
    import json

    truth = json.loads((collection_cohort / "ground_truth.json").read_text())
    clean, quirky = load_all(tiny_cohort), load_all(collection_cohort)
    seen = set()
    for subject in truth["subjects"]:
        sid, variant = subject["subject_id"], subject["quirks"]["ct"]
        if sid.startswith("AMC"):
            assert quirky[sid] is None and not subject["has_seg"]
            continue
        if quirky[sid] is None:
            continue
        seen.add(variant)
        ours, reference = quirky[sid], clean[sid]
        assert ours.spacing_mm == pytest.approx(reference.spacing_mm)
        if variant == "uneven slice spacing":
            positions = np.array(subject["quirks"]["slice_positions_mm"])
            assert np.ptp(np.diff(positions)) > 0.2 * subject["acquisition"]["slice_thickness_mm"]
            assert any("resampled on the stored positions" in n for n in ours.notes)
            assert _dice(ours.nodule_mask, reference.nodule_mask) >= 0.95
            continue
        np.testing.assert_array_equal(ours.hu, reference.hu)
        np.testing.assert_array_equal(ours.nodule_mask, reference.nodule_mask)
    assert seen >= set(quirks.CT_VARIANTS[1:]), seen


def test_collection_seg_writers_as_the_download(collection_cohort: Path) -> None:
    """Writers known by SOP class, not by their descriptions; ePAD SEGs share their
    references; Slicer SEGs have fewer frames than the CT has slices."""
    import json

    truth = json.loads((collection_cohort / "ground_truth.json").read_text())
    writers = set()
    for subject in truth["subjects"]:
        if not subject["seg"]:
            continue
        seg = pydicom.dcmread(collection_cohort / subject["seg"]["file"], stop_before_pixels=True)
        writers.add(str(seg.Manufacturer))
        assert int(seg.NumberOfFrames) < subject["ct"]["n_slices"]
        if seg.Manufacturer == "Stanford University":
            assert seg.SeriesDescription.startswith("ePAD Generated DSO ")
            assert "DerivationImageSequence" in seg.SharedFunctionalGroupsSequence[0]
            assert str(seg.StudyID) == "1" and int(seg.SeriesNumber) == 1000
    assert writers == {"Stanford University", "3D Slicer Community"}


def test_which_subjects_keep_a_seg_in_the_collection() -> None:
    kept = {
        sid: quirks.collection_has_seg(sid, True)
        for sid in ("R01-001", "R01-146", "R01-147", "R01-163", "R01-164", "AMC-001")
    }
    assert kept == {
        "R01-001": True,
        "R01-146": True,
        "R01-147": False,
        "R01-163": False,
        "R01-164": True,
        "AMC-001": False,
    }
    assert not quirks.collection_has_seg("R01-001", False)


def test_qc_montage_reads_the_seg_series_of_a_collection_twin(collection_cohort: Path) -> None:
    """``rgsynth view`` shows each SEG on the series it was drawn on, not a localizer or an
    earlier study, and survives the backslash locations of metadata.csv."""
    from rgsynth.io.montage import cohort_series, load_views

    metadata = (collection_cohort / "metadata.csv").read_text()
    assert ".\\NSCLC Radiogenomics\\" in metadata
    series = cohort_series(collection_cohort)
    views = {view.subject_id: view for view in load_views(collection_cohort, 8)}
    for subject_id, entry in series.items():
        assert "LOCALIZER" not in str(pydicom.dcmread(next(entry["CT"].iterdir())).ImageType)
        if "SEG" in entry:
            assert views[subject_id].slice_mask is not None and views[subject_id].slice_mask.any()


def test_frames_that_each_list_every_instance_are_placed_by_position(clean_case) -> None:
    """A per-frame form of the ePAD quirk: each frame's own DerivationImageSequence names
    the whole series, which says nothing about which slice a frame is."""
    folder, _, mask, ct, seg = clean_case
    quirks.crop_frames_to_nodule(seg)
    quirks.shared_references_only(seg, ct)
    everything = seg.SharedFunctionalGroupsSequence[0].DerivationImageSequence
    del seg.SharedFunctionalGroupsSequence[0].DerivationImageSequence
    for item in seg.PerFrameFunctionalGroupsSequence:
        item.DerivationImageSequence = copy.deepcopy(everything)
    first_listed = _naive_per_frame_first_source(seg, [str(ds.SOPInstanceUID) for ds in ct])
    assert not np.array_equal(first_listed, mask)
    np.testing.assert_array_equal(_read_ours(folder, seg), mask)


def _naive_per_frame_first_source(seg: pydicom.Dataset, ct_uids: list[str]) -> np.ndarray:
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    mask = np.zeros((len(ct_uids), *frames.shape[1:]), dtype=bool)
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        mask[ct_uids.index(str(uid))] |= frame > 0
    return mask


def test_a_seg_on_another_pixel_grid_is_refused_in_one_line(clean_case) -> None:
    from rgsynth.errors import InputError

    folder, _, _, ct, seg = clean_case
    quirks.shared_references_only(seg, ct)  # no per-frame reference: placed by position
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.PixelSpacing = [1.4, 1.4]  # half the CT's resolution
    with pytest.raises(InputError, match="pixel spacing") as refused:
        _read_ours(folder, seg)
    assert "\n" not in str(refused.value)
