"""The first-model recipe: the merged dataset layout, class ids and hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.data_hash import dataset_hash, split_hash
from training.datasets.taxonomy import load_taxonomy
from training.recipes.first_model import CLASSES, prepare

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_classes_are_the_taxonomy_trained_classes_in_order() -> None:
    assert list(load_taxonomy().trained_class_names()) == CLASSES


@pytest.mark.skipif(not (SHARED / "garbage").is_dir(), reason=f"needs {SHARED}")
def test_prepare_merges_sources_with_our_class_ids_and_a_stable_hash(tmp_path: Path) -> None:
    report = prepare(SHARED, tmp_path / "a", yolox=None, limit=2)
    assert report.images["vehicles/train"] == 2 and report.images["signboards/val"] == 2
    data = yaml.safe_load((tmp_path / "a" / "data.yaml").read_text())
    assert list(data["names"].values()) == CLASSES
    # signboard (source id 0) becomes our id 3; vehicles (source 0..3) become 4..7
    signboard_labels = (tmp_path / "a" / "val" / "labels").glob("signboards__*.txt")
    assert {line.split()[0] for f in signboard_labels for line in f.read_text().split("\n") if line} == {"3"}
    vehicle_labels = (tmp_path / "a" / "train" / "labels").glob("vehicles__*.txt")
    assert {int(line.split()[0]) for f in vehicle_labels for line in f.read_text().split("\n") if line} <= {
        4,
        5,
        6,
        7,
    }
    # the signboard set is repeated in the train list to even out the classes (2 images x 3)
    assert sum("signboards__" in line for line in (tmp_path / "a" / "train.txt").read_text().split()) == 6

    # per-source val sets: each source's own val photos, same classes
    for source in ("garbage", "signboards", "vehicles"):
        per_source = yaml.safe_load((tmp_path / "a" / f"data_val_{source}.yaml").read_text())
        assert per_source["names"] == data["names"]
        listed = (tmp_path / "a" / per_source["val"]).read_text().split()
        assert len(listed) == 2 and all(Path(p).name.startswith(f"{source}__") for p in listed)
        # and its train photos, each once (not repeated as in train.txt), to measure the fit
        fit = yaml.safe_load((tmp_path / "a" / f"data_fit_{source}.yaml").read_text())
        fitted = (tmp_path / "a" / fit["val"]).read_text().split()
        assert len(fitted) == 2 and all(f"/train/images/{source}__" in p for p in fitted)

    prepare(SHARED, tmp_path / "b", yolox=None, limit=2)
    assert dataset_hash(tmp_path / "a" / "data.yaml") == dataset_hash(tmp_path / "b" / "data.yaml")
    label = next((tmp_path / "b" / "val" / "labels").glob("garbage__*.txt"))
    label.write_text(label.read_text() + "1 0.5 0.5 0.1 0.1\n")
    assert split_hash(tmp_path / "a" / "data.yaml", "val") != split_hash(tmp_path / "b" / "data.yaml", "val")


@pytest.mark.skipif(not (SHARED / "garbage").is_dir(), reason=f"needs {SHARED}")
def test_garbage_misses_counts_every_labelled_box_once(tmp_path: Path) -> None:
    import cv2

    from training.recipes.garbage_misses import measure

    prepare(SHARED, tmp_path / "build", yolox=None, limit=6)
    labelled = sum(
        line.startswith("0 ")
        for f in (tmp_path / "build" / "val" / "labels").glob("garbage__*.txt")
        for line in f.read_text().splitlines()
    )
    shipped = Path(__file__).resolve().parents[2] / "models" / "streetwatch-det" / "streetwatch-det.onnx"
    figure = tmp_path / "misses.jpg"
    # at an impossible score nothing is found: every box is a miss with nothing near it
    result = measure(shipped, tmp_path / "build", (0.0, 1.01), conf=0.999, figure=figure)
    assert result["labelled"] == labelled > 0
    assert result["missed"] == labelled and result["causes"] == {
        "nothing_near": labelled,
        "garbage_of_other_extent": 0,
        "other_class": 0,
    }
    assert cv2.imread(str(figure)).shape == (720, 1440, 3)
    # at the model's working score it finds some of them
    found = measure(shipped, tmp_path / "build", (0.0, 1.01), conf=0.25)
    assert int(str(found["missed"])) < labelled
