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
        ("voc", "voc", ["--source", "signboards_vn"], 1),
        ("cvat", "cvat/annotations.xml", ["--source", "garbage_cn"], 1),
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
