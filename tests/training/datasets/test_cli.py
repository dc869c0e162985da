"""``streetwatch dataset ...`` end to end on the fixtures, through the real entry point."""

from __future__ import annotations

import json

import pytest
import yaml

from streetwatch.cli import main

from .conftest import FIXTURES, yolo_rows


@pytest.mark.parametrize(
    ("fmt", "path", "extra", "images"),
    [
        ("yolo", "yolo", ["--source", "garbage_cn"], 7),
        ("coco", "coco/annotations.json", ["--source", "cam", "--mapping", "coco"], 1),
        ("voc", "voc", ["--source", "signboards_vn", "--ignore", "billboard"], 1),
        # The VOC and CVAT fixtures each hold one box of a class no mapping knows (to test the
        # report); --ignore keeps their one image (see the test of left-out images below).
        ("cvat", "cvat/annotations.xml", ["--source", "garbage_cn", "--ignore", "rubbish"], 1),
        ("labelstudio", "labelstudio/export.json", ["--source", "vehicles_vn"], 1),
    ],
)
def test_import_every_format(tmp_path, capsys, fmt, path, extra, images):
    out = tmp_path / "out"
    assert main(["dataset", "import", fmt, str(FIXTURES / path), "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert f"{images} images" in printed
    report = json.loads((out / "import_report.json").read_text())
    assert report["images_imported"] == images
    assert all(p["file"] and p["reason"] for p in report["problems"])
    written = list((out / "images").rglob("*.jpg"))
    assert len(written) == images
    assert yaml.safe_load((out / "data.yaml").read_text())["names"][0] == "garbage"


def test_import_merge_split_stats(tmp_path, capsys):
    garbage, voc, merged, resplit = (tmp_path / n for n in ("garbage", "voc", "merged", "resplit"))
    assert main(["dataset", "import", "yolo", str(FIXTURES / "yolo"), "--out", str(garbage)]) == 0
    assert (
        main(
            [
                "dataset",
                "import",
                "voc",
                str(FIXTURES / "voc"),
                "--source",
                "signboards_vn",
                "--ignore",
                "billboard",
                "--out",
                str(voc),
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["dataset", "merge", str(garbage), str(voc), "--out", str(merged), "--split", "origin"]) == 0
    printed = capsys.readouterr().out
    assert "near-duplicates: 2 groups holding 4 images" in printed
    assert "groups straddling the sources' own train/val split: 1" in printed
    manifest = json.loads((merged / "manifest.json").read_text())
    sides = {}
    for key, entry in manifest["images"].items():
        sides.setdefault(entry["group"], set()).add(key.split("/")[1])
    assert all(len(s) == 1 for s in sides.values())
    # origin policy: the copy of a val photo that sat in train moved to val with it.
    assert manifest["images"]["images/val/yolo__atanu_002240.jpg"]["source"] == "yolo"

    assert (
        main(
            ["dataset", "split", str(merged), "--out", str(resplit), "--val-fraction", "0.25", "--seed", "2"]
        )
        == 0
    )
    capsys.readouterr()
    train = {p.name for p in (resplit / "images/train").iterdir()}
    val = {p.name for p in (resplit / "images/val").iterdir()}
    assert len(train) + len(val) == 8 and val and not train & val

    stats_json, plots = tmp_path / "stats.json", tmp_path / "plots"
    assert main(["dataset", "stats", str(resplit), "--json", str(stats_json), "--plots", str(plots)]) == 0
    stats = json.loads(stats_json.read_text())
    names = yaml.safe_load((resplit / "data.yaml").read_text())["names"]
    counted: dict[str, int] = {}
    for label in (resplit / "labels").rglob("*.txt"):
        for row in yolo_rows(label):
            counted[names[int(row[0])]] = counted.get(names[int(row[0])], 0) + 1
    assert stats["boxes_per_class"] == counted
    assert stats["images_per_source"] == {"signboards_vn": 1, "yolo": 7}
    assert len(list(plots.glob("*.png"))) == 3


def test_stats_of_a_foreign_yolo_set_with_names(tmp_path, capsys):
    assert main(["dataset", "stats", str(FIXTURES / "yolo"), "--names", "garbage,garbage_bin,overflow"]) == 0
    printed = capsys.readouterr().out
    assert "7 images" in printed and "missing_image: 1" in printed


def test_list_shows_the_catalog(capsys):
    assert main(["dataset", "list"]) == 0
    printed = capsys.readouterr().out
    assert "streetvendor_sli" in printed and "restricted" in printed


def test_import_errors_are_clear(tmp_path, capsys):
    assert main(["dataset", "import", "yolo", str(tmp_path / "nothere"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "dataset",
                "import",
                "yolo",
                str(FIXTURES / "yolo"),
                "--out",
                str(tmp_path / "o"),
                "--classes",
                "x",
            ]
        )
        == 1
    )
    assert "not in the taxonomy" in capsys.readouterr().err


def test_import_takes_yolo_names_from_the_catalog_entry_of_the_source(tmp_path, capsys):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(FIXTURES / "yolo", plain)
    (plain / "data.yaml").unlink()
    assert main(["dataset", "import", "yolo", str(plain), "--source", "x", "--out", str(tmp_path / "a")]) == 1
    assert "--names" in capsys.readouterr().err
    assert (
        main(
            ["dataset", "import", "yolo", str(plain), "--source", "garbage_cn", "--out", str(tmp_path / "b")]
        )
        == 0
    )
    assert "source garbage_cn: 7 images" in capsys.readouterr().out


def test_images_with_unmapped_classes_are_left_out_and_a_set_with_none_mapped_fails(tmp_path, capsys):
    import shutil

    # The VOC photo has a 'billboard' box that no mapping knows: written without it, the photo
    # would teach that billboard as background. It is left out, and the user told how to keep it.
    out = tmp_path / "voc"
    voc = ["dataset", "import", "voc", str(FIXTURES / "voc")]
    assert main([*voc, "--source", "signboards_vn", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "left out 1 images" in printed and "--ignore billboard" in printed
    assert not out.exists()

    # A YOLO set whose names are not ours (and no mapping): nothing maps, nothing is written.
    foreign = tmp_path / "foreign"
    shutil.copytree(FIXTURES / "yolo", foreign)
    (foreign / "data.yaml").write_text("names: [trash, bin, full_bin]\n")
    assert (
        main(["dataset", "import", "yolo", str(foreign), "--source", "x", "--out", str(tmp_path / "f")]) == 1
    )
    err = capsys.readouterr().err
    assert "none of x's boxes map to our classes" in err and "--mapping" in err
    assert not (tmp_path / "f").exists()


def import_garbage_fixture(out) -> None:
    """The YOLO fixture imported as the garbage source (its own mapping) into ``out``."""
    args = ["dataset", "import", "yolo", str(FIXTURES / "yolo"), "--source", "garbage_cn", "--out", str(out)]
    assert main(args) == 0


def test_import_records_the_classes_the_source_labels(tmp_path, capsys):
    out = tmp_path / "g"
    assert (
        main(
            ["dataset", "import", "yolo", str(FIXTURES / "yolo"), "--source", "garbage_cn", "--out", str(out)]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    # from the garbage source's mapping: it labels these three and nothing else
    assert manifest["source_classes"] == {"garbage_cn": ["garbage", "garbage_bin", "overflow"]}

    # without a named mapping (names are ours already), the classes that occur in its boxes
    plain = tmp_path / "plain"
    assert (
        main(["dataset", "import", "yolo", str(FIXTURES / "yolo"), "--source", "mine", "--out", str(plain)])
        == 0
    )
    classes = json.loads((plain / "manifest.json").read_text())["source_classes"]["mine"]
    names = yaml.safe_load((plain / "data.yaml").read_text())["names"]
    written = {names[int(row[0])] for label in (plain / "labels").rglob("*.txt") for row in yolo_rows(label)}
    assert set(classes) == written and len(written) < len(names)


def test_writing_into_an_input_folder_is_refused_and_loses_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    import_garbage_fixture(data)
    before = sorted(p.name for p in data.rglob("*"))
    for args in (
        ["split", str(data), "--out", str(data), "--overwrite"],
        ["split", str(data), "--out", str(data / "sub"), "--overwrite"],
        ["merge", str(data), "--out", str(data), "--overwrite"],
        ["import", "yolo", str(data), "--out", str(data), "--overwrite"],
    ):
        capsys.readouterr()
        assert main(["dataset", *args]) == 1, args
        assert "overlaps the input" in capsys.readouterr().err
    assert sorted(p.name for p in data.rglob("*")) == before

    assert main(["dataset", "merge", str(data), str(data), "--out", str(tmp_path / "twice")]) == 1
    assert "given twice" in capsys.readouterr().err
    assert main(["dataset", "merge", str(FIXTURES / "yolo"), "--out", str(tmp_path / "raw")]) == 1
    assert "import it first" in capsys.readouterr().err
    assert main(["dataset", "split", str(data), "--out", str(tmp_path / "s"), "--val-fraction", "1.5"]) == 1
    assert "--val-fraction" in capsys.readouterr().err


def test_split_keeps_the_input_class_list(tmp_path, capsys):
    garbage, merged, resplit = tmp_path / "g", tmp_path / "m", tmp_path / "r"
    import_garbage_fixture(garbage)
    capsys.readouterr()
    assert main(["dataset", "merge", str(garbage), "--out", str(merged)]) == 0  # trained classes
    assert "source garbage_cn: " in capsys.readouterr().out  # named as imported, not by its folder "g"
    assert main(["dataset", "split", str(merged), "--out", str(resplit)]) == 0
    names = yaml.safe_load((merged / "data.yaml").read_text())["names"]
    assert yaml.safe_load((resplit / "data.yaml").read_text())["names"] == names


def test_import_of_the_current_folder_names_the_source_after_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES / "yolo")
    out = tmp_path / "dot"
    assert main(["dataset", "import", "yolo", ".", "--out", str(out)]) == 0
    assert {p.name.split("__")[0] for p in (out / "images").rglob("*.jpg")} == {"yolo"}
