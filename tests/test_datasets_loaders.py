"""The four dataset loaders on miniature trees in each shipped layout: clips, labels, subjects, frame order,
errata handled and counted, bad clips skipped and counted, malformed trees reported in one exact line."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest
from builders import (
    BuiltDataset,
    build_casme2,
    build_casme3,
    build_casme_sq,
    build_samm,
    rename_header,
    truncate_file,
    write_workbook,
)

from fdp.datasets.casme2 import load_casme2
from fdp.datasets.casme3 import load_casme3
from fdp.datasets.casme_sq import load_casme_sq
from fdp.datasets.loading import DATASETS, LoadResult, load_dataset
from fdp.datasets.samm import load_samm
from fdp.datasets.sheets import natural_key
from fdp.errors import ConfigError, DatasetLayoutError


def assert_matches_built(result: LoadResult, built: BuiltDataset) -> None:
    """The load returns exactly the built clips, with their labels, spans, frames and the planted errata."""
    got = {(c.subject, c.clip_id): c for c in result.clips}
    assert sorted(got) == sorted((c.subject, c.clip_id) for c in built.clips)
    for want in built.clips:
        clip = got[(want.subject, want.clip_id)]
        assert (clip.label, clip.onset, clip.apex, clip.offset) == (want.label, want.onset, want.apex, want.offset)
        assert clip.frame_numbers == want.frame_numbers
        assert all(p.parent == want.folder and p.is_file() for p in clip.frame_paths)
        assert clip.fps == DATASETS[result.dataset].fps
    assert result.errata_counts() == built.errata
    assert result.excluded == built.excluded
    assert result.skipped == ()
    assert result.layout == built.layout
    assert result.sheet == built.sheet


@pytest.mark.parametrize("sheet", ["2019", "updated"])
@pytest.mark.parametrize("layout", ["cropped", "raw"])
def test_load_casme2_each_layout_and_sheet_returns_built_clips(tmp_path, layout, sheet):
    built = build_casme2(tmp_path, layout=layout, sheet=sheet)
    result = load_casme2(built.root)
    assert_matches_built(result, built)
    assert result.subjects() == ["sub01", "sub02", "sub03"]
    assert {c.dataset for c in result.clips} == {"casme2"}


def test_load_casme2_frame_names_cross_a_digit_boundary_in_numeric_order(tmp_path):
    built = build_casme2(tmp_path, layout="cropped")
    clip = next(c for c in load_casme2(built.root).clips if (c.subject, c.clip_id) == ("sub01", "EP02_01f"))
    assert [p.name for p in clip.frame_paths] == [f"reg_img{n}.jpg" for n in range(5, 15)]
    assert clip.frame_numbers == tuple(range(5, 15))


def test_load_casme2_apex_slash_uses_middle_and_is_counted(tmp_path):
    built = build_casme2(tmp_path, layout="raw")
    result = load_casme2(built.root)
    clip = next(c for c in result.clips if (c.subject, c.clip_id) == ("sub02", "EP02_01f"))
    assert (clip.onset, clip.apex, clip.offset) == (6, 9, 13)
    [erratum] = result.errata
    assert erratum.message == (f"{built.sheet}: row 5 (sub02/EP02_01f): apex '/' is not a frame number; "
                               "used the middle of onset..offset, 9")


def test_load_casme2_both_layouts_present_auto_prefers_raw_and_layout_picks(tmp_path):
    build_casme2(tmp_path, layout="cropped")
    built_raw = build_casme2(tmp_path, layout="raw")
    assert load_casme2(built_raw.root).layout == "raw"
    cropped = load_casme2(built_raw.root, layout="cropped")
    assert cropped.layout == "cropped"
    assert cropped.clips[0].frame_paths[0].name == "reg_img5.jpg"


def test_load_samm_notes_block_and_other_class_returns_built_clips(tmp_path):
    built = build_samm(tmp_path)
    result = load_samm(built.root)
    assert_matches_built(result, built)
    assert result.subjects() == ["006", "007", "009"]
    assert "Other" in {c.label for c in result.clips}
    clip = next(c for c in result.clips if c.clip_id == "006_1_2")
    assert clip.frame_paths[0].name == "006_05562.jpg"


def test_load_samm_blank_and_minus_one_apex_use_middle_and_are_counted(tmp_path):
    built = build_samm(tmp_path)
    result = load_samm(built.root)
    assert result.errata_counts() == {"apex_missing": 2}
    assert sorted((e.subject, e.clip_id) for e in result.errata) == [("006", "006_2_2"), ("007", "007_1_2")]
    clip = next(c for c in result.clips if c.clip_id == "007_1_2")
    assert clip.apex == (clip.onset + clip.offset) // 2


@pytest.mark.parametrize("layout", ["rawpic", "selectedpic", "cropped"])
def test_load_casme_sq_each_layout_returns_micro_expressions_only(tmp_path, layout):
    built = build_casme_sq(tmp_path, layout=layout)
    result = load_casme_sq(built.root, layout=layout)
    assert_matches_built(result, built)
    assert result.subjects() == ["s15", "s16", "s19"]
    assert result.excluded == {"macro-expression": 3}


def test_load_casme_sq_offset_zero_uses_apex_and_is_counted(tmp_path):
    built = build_casme_sq(tmp_path, layout="selectedpic")
    result = load_casme_sq(built.root)
    clip = next(c for c in result.clips if (c.subject, c.clip_id) == ("s16", "disgust1_1"))
    assert (clip.onset, clip.apex, clip.offset) == (10, 12, 12)
    [erratum] = result.errata
    assert erratum.message == f"{built.sheet}: row 5 (s16/disgust1_1): offset '0' taken as the apex, 12"


def test_load_casme_sq_rawpic_clip_is_expression_plus_half_a_second_each_side(tmp_path):
    built = build_casme_sq(tmp_path, layout="rawpic")
    clip = next(c for c in load_casme_sq(built.root).clips if (c.subject, c.clip_id) == ("s15", "anger1_1"))
    assert (clip.onset, clip.offset) == (10, 15)
    assert clip.frame_numbers == tuple(range(1, 31))  # 15 frames (0.5 s at 30 fps) each side, from img1
    assert clip.frame_paths[0].parent.name == "15_0401angrywoman"


def test_load_casme3_spno_folder_matches_spno_sheet_and_is_counted(tmp_path):
    built = build_casme3(tmp_path)
    result = load_casme3(built.root)
    assert_matches_built(result, built)
    assert result.subjects() == ["spNO.1", "spNO.2", "spNO.3"]
    assert result.errata_counts() == {"subject_case": 3}
    assert {c.frame_paths[0].parents[2].name for c in result.clips if c.subject == "spNO.2"} == {"spNo.2"}


def test_load_casme3_two_expressions_in_one_task_video_get_distinct_ids(tmp_path):
    built = build_casme3(tmp_path, subjects=1)
    result = load_casme3(built.root)
    assert [c.clip_id for c in result.clips] == ["a_8", "a_28", "b_8"]
    assert all(p.suffix == ".jpg" and p.parent.name == "color" for c in result.clips for p in c.frame_paths)


@pytest.mark.parametrize(("dataset", "build"), [("casme2", build_casme2), ("samm", build_samm),
                                                ("casme_sq", build_casme_sq), ("casme3", build_casme3)])
def test_load_dataset_by_id_gives_dataset_fps_and_natural_frame_order(tmp_path, dataset, build):
    result = load_dataset(dataset, build(tmp_path).root)
    fps = {"casme2": 200.0, "samm": 200.0, "casme_sq": 30.0, "casme3": 30.0}[dataset]
    assert {c.fps for c in result.clips} == {fps}
    for clip in result.clips:
        names = [p.name for p in clip.frame_paths]
        assert names == sorted(names, key=natural_key)
        assert list(clip.frame_numbers) == sorted(clip.frame_numbers)


def test_load_dataset_unknown_id_raises_config_error():
    with pytest.raises(ConfigError) as info:
        load_dataset("smic", Path("/data/SMIC"))
    assert str(info.value) == "unknown dataset 'smic'; choose one of casme2, samm, casme_sq, casme3"


def test_load_result_summary_counts_skips_and_errata(tmp_path):
    built = build_casme2(tmp_path)
    shutil.rmtree(built.clip("sub03", "EP03_02f").folder)
    assert load_casme2(built.root).summary() == ("CASME II (cropped): 8 clips from 3 subjects; 1 skipped "
                                                 "(missing_folder 1); 1 errata corrected (apex_missing 1)")


# Malformed trees ---------------------------------------------------------------------------------------------------


def test_load_casme2_missing_sheet_raises_one_line(tmp_path):
    built = build_casme2(tmp_path)
    built.sheet.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root)
    assert str(info.value) == (f"{built.root}: no sheet named like 'CASME2-coding-*.xlsx'; point --root at the "
                               "CASME II folder that holds the coding sheet and CASME2_RAW_selected or Cropped")


def test_load_samm_missing_sheet_raises_one_line(tmp_path):
    built = build_samm(tmp_path)
    built.sheet.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        load_samm(built.root)
    assert str(info.value) == (f"{built.root}: no sheet named like 'SAMM_*Micro_FACS_Codes*.xlsx'; "
                               "point --root at the folder that holds the subject folders")


@pytest.mark.parametrize(("build", "load", "line"), [
    (build_casme_sq, load_casme_sq, "no sheet named like 'CAS(ME)*code_final*.xlsx'; point --root at the CAS(ME)^2 "
                                    "folder that holds the code sheet and rawpic, selectedpic or cropped"),
    (build_casme3, load_casme3, "no sheet named like 'cas(me)*3_part_A_ME_label*.xlsx'; point --root at the "
                                "CAS(ME)^3 Part A folder that holds the label sheet and the spNO.* folders"),
])
def test_load_casme_sq_and_casme3_missing_sheet_raise_one_line(tmp_path, build, load, line):
    built = build(tmp_path)
    built.sheet.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        load(built.root)
    assert str(info.value) == f"{built.root}: {line}"


def test_load_casme2_renamed_column_raises_one_line(tmp_path):
    built = build_casme2(tmp_path)
    rename_header(built.sheet, "ApexFrame", "Apex Frm")
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root)
    assert str(info.value) == (
        f"{built.sheet}: no column named like 'ApexFrame' in the header row of sheet 'Sheet1' (found Subject, "
        "Filename, OnsetFrame, Apex Frm, OffsetFrame, Action Units, Estimated Emotion); "
        "use the sheet as the dataset ships it")


def test_load_samm_renamed_subject_header_raises_one_line(tmp_path):
    built = build_samm(tmp_path)
    rename_header(built.sheet, "Subject", "Participant")
    with pytest.raises(DatasetLayoutError) as info:
        load_samm(built.root)
    assert str(info.value) == (f"{built.sheet}: no header row starting with 'Subject' in any sheet; "
                               "use the sheet as the dataset ships it")


def test_load_casme3_without_label_worksheet_raises_one_line(tmp_path):
    built = build_casme3(tmp_path)
    write_workbook(built.sheet, {"labels": [["Subject", "Filename"]]})
    with pytest.raises(DatasetLayoutError) as info:
        load_casme3(built.root)
    assert str(info.value) == (f"{built.sheet}: no worksheet named 'label' (found 'labels'); "
                               "use the sheet as the dataset ships it")


def test_load_casme_sq_without_naming_rule_raises_one_line(tmp_path):
    built = build_casme_sq(tmp_path, layout="selectedpic")
    write_workbook(built.sheet, {"CASFEcode_final": [[1, "anger1_1", 10, 12, 15, "4", "negative",
                                                      "micro-expression", "anger"]]})
    with pytest.raises(DatasetLayoutError) as info:
        load_casme_sq(built.root)
    assert str(info.value) == (f"{built.sheet}: no worksheet named 'naming rule1' (found 'CASFEcode_final'); "
                               "use the sheet as the dataset ships it")


def test_load_casme2_unreadable_workbook_raises_one_line(tmp_path):
    built = build_casme2(tmp_path)
    built.sheet.write_bytes(b"not a zip file")
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root)
    line = str(info.value)
    assert line.startswith(f"{built.sheet}: not a readable .xlsx workbook (")
    assert line.endswith("); restore it from the dataset archive") and "\n" not in line


def test_load_casme2_no_frame_folders_raises_one_line(tmp_path):
    built = build_casme2(tmp_path)
    shutil.rmtree(built.root / "Cropped")
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root)
    assert str(info.value) == (f"{built.root}: no 'CASME2_RAW_selected' or 'Cropped' folder holding subject "
                               "folders; point --root at the unpacked CASME II folder")


def test_load_casme2_layout_not_in_tree_raises_one_line(tmp_path):
    built = build_casme2(tmp_path, layout="cropped")
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root, layout="raw")
    assert str(info.value) == (f"{built.root}: no 'CASME2_RAW_selected' folder holding subject folders; "
                               "point --root at the unpacked CASME II folder")


def test_load_casme2_unknown_layout_raises_config_error(tmp_path):
    built = build_casme2(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_casme2(built.root, layout="aligned")
    assert str(info.value) == "unknown CASME II layout 'aligned'; choose auto, raw, cropped"


def test_load_samm_root_not_a_folder_raises_one_line(tmp_path):
    with pytest.raises(DatasetLayoutError) as info:
        load_samm(tmp_path / "SAMM")
    assert str(info.value) == f"{tmp_path / 'SAMM'}: no such folder; point --root at the unpacked SAMM folder"


def test_load_casme2_missing_frame_folder_skips_clip_and_counts_it(tmp_path):
    built = build_casme2(tmp_path)
    gone = built.clip("sub02", "EP03_02f")
    shutil.rmtree(gone.folder)
    result = load_casme2(built.root)
    assert len(result.clips) == 8
    assert result.skip_counts() == {"missing_folder": 1}
    [skipped] = result.skipped
    assert (skipped.subject, skipped.clip_id) == ("sub02", "EP03_02f")
    assert skipped.message == (f"{gone.folder}: no frame folder for the clip in CASME2-coding-20190701.xlsx row 6; "
                               "restore it from the dataset archive")


def test_load_casme2_missing_frame_folder_strict_raises_the_same_line(tmp_path):
    built = build_casme2(tmp_path)
    gone = built.clip("sub02", "EP03_02f")
    shutil.rmtree(gone.folder)
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root, strict=True)
    assert str(info.value) == (f"{gone.folder}: no frame folder for the clip in CASME2-coding-20190701.xlsx row 6; "
                               "restore it from the dataset archive")


def test_load_samm_frame_missing_inside_expression_skips_clip_and_counts_it(tmp_path):
    built = build_samm(tmp_path)
    clip = built.clip("009", "009_3_2")
    (clip.folder / f"009_{clip.onset + 2:05d}.jpg").unlink()
    result = load_samm(built.root)
    assert result.skip_counts() == {"missing_frames": 1}
    assert result.skipped[0].message == (f"{clip.folder}: frames {clip.onset + 2} missing between onset "
                                         f"{clip.onset} and offset {clip.offset}; restore them from the dataset "
                                         "archive")
    assert len(result.clips) == 8


def test_load_samm_frame_missing_outside_expression_keeps_clip(tmp_path):
    built = build_samm(tmp_path)
    clip = built.clip("009", "009_3_2")
    (clip.folder / f"009_{clip.frame_numbers[0]:05d}.jpg").unlink()
    result = load_samm(built.root)
    assert result.skipped == ()
    loaded = next(c for c in result.clips if c.clip_id == "009_3_2")
    assert loaded.frame_numbers == clip.frame_numbers[1:]


def test_load_casme3_truncated_jpeg_skips_clip_and_counts_it(tmp_path):
    built = build_casme3(tmp_path)
    clip = built.clip("spNO.3", "b_8")
    broken = clip.folder / f"{clip.apex}.jpg"
    truncate_file(broken)
    result = load_casme3(built.root)
    assert result.skip_counts() == {"bad_jpeg": 1}
    assert result.skipped[0].message == (f"{broken}: truncated JPEG (no end-of-image marker); "
                                         "restore it from the dataset archive")
    assert len(result.clips) == 8


def test_load_casme3_truncated_jpeg_strict_raises_the_same_line(tmp_path):
    built = build_casme3(tmp_path)
    clip = built.clip("spNO.3", "b_8")
    broken = clip.folder / f"{clip.apex}.jpg"
    truncate_file(broken)
    with pytest.raises(DatasetLayoutError) as info:
        load_casme3(built.root, strict=True)
    assert str(info.value) == f"{broken}: truncated JPEG (no end-of-image marker); restore it from the dataset archive"


def test_load_casme3_truncated_jpeg_unverified_loads(tmp_path):
    built = build_casme3(tmp_path)
    clip = built.clip("spNO.3", "b_8")
    truncate_file(clip.folder / f"{clip.apex}.jpg")
    assert len(load_casme3(built.root, verify_frames=False).clips) == 9


def test_load_casme_sq_bad_onset_cell_skips_row_and_counts_it(tmp_path):
    built = build_casme_sq(tmp_path, layout="cropped", subjects=1, clips_per_subject=2)
    write_workbook(built.sheet, {
        "CASFEcode_final": [[1, "disgust1_1", "ten", 12, 15, "4", "negative", "micro-expression", "disgust"],
                            [1, "anger1_1", 10, 12, 15, "4", "negative", "micro-expression", "anger"]],
        "naming rule1": [["s15", "15", 1]], "naming rule2": [[101, "disgust1"], [401, "anger1"]]})
    result = load_casme_sq(built.root)
    assert [c.clip_id for c in result.clips] == ["anger1_1"]
    assert [s.message for s in result.skipped] == [
        f"{built.sheet}: row 1 (s15/disgust1_1): onset 'ten' is not a frame number; fix the cell or remove the row"]


def test_load_samm_clip_listed_twice_keeps_first_and_counts_second(tmp_path):
    built = build_samm(tmp_path, subjects=1, clips_per_subject=2, errata=False)
    book = openpyxl.load_workbook(built.sheet)
    sheet = book.active
    sheet.append([cell.value for cell in sheet[sheet.max_row]])
    book.save(built.sheet)
    result = load_samm(built.root)
    assert [c.clip_id for c in result.clips] == ["006_1_2", "006_2_2"]
    assert [s.message for s in result.skipped] == [f"{built.sheet}: 006/006_2_2 is listed twice; "
                                                   "remove the duplicate row"]


def test_load_casme2_every_clip_bad_raises_one_line(tmp_path):
    built = build_casme2(tmp_path, subjects=1, clips_per_subject=2)
    for clip in built.clips:
        shutil.rmtree(clip.folder)
    with pytest.raises(DatasetLayoutError) as info:
        load_casme2(built.root)
    first = built.clips[0].folder
    assert str(info.value) == (
        f"{built.root}: none of the 2 clips in CASME2-coding-20190701.xlsx could be loaded (first: {first}: no frame "
        "folder for the clip in CASME2-coding-20190701.xlsx row 2; restore it from the dataset archive); "
        "point --root at the unpacked CASME II folder")
