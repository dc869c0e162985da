"""``streetwatch detect`` end to end on real photos, with broken files mixed in."""

import json
import shutil
from pathlib import Path

import cv2
import pytest

from streetwatch.cli import main
from streetwatch.paths import models_dir

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PHOTOS = sorted((SHARED / "vehicles" / "val" / "images").glob("*.jpg"))[:2]
YOLOX = models_dir() / "yolox_nano" / "yolox_nano.onnx"

pytestmark = pytest.mark.skipif(len(PHOTOS) < 2, reason="needs ../shared/data/vehicles")


@pytest.fixture
def folder(tmp_path):
    """Two real photos, a truncated JPEG, random bytes named .jpg and a non-image file."""
    images = tmp_path / "images"
    images.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, images / photo.name)
    data = PHOTOS[0].read_bytes()
    (images / "b_truncated.jpg").write_bytes(data[: len(data) // 2])
    (images / "c_garbage.jpg").write_bytes(bytes(range(256)) * 8)
    (images / "notes.txt").write_text("not an image")
    return images


def run(capsys, *argv):
    code = main(["detect", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines_for_a_folder_and_warnings_for_broken_files(capsys, folder):
    code, out, err = run(capsys, folder, "--model", YOLOX, "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["image"]).name for r in records] == sorted(p.name for p in PHOTOS)
    for record in records:
        image = cv2.imread(record["image"])
        assert set(record) == {"image", "width", "height", "detections"}
        assert (record["height"], record["width"]) == image.shape[:2]
        assert record["detections"], "real traffic photos have vehicles or people"
        for det in record["detections"]:
            assert set(det) == {"class", "score", "box"}
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 <= record["width"] and 0 <= y1 < y2 <= record["height"]
            assert 0.25 <= det["score"] <= 1
    assert "b_truncated.jpg is a truncated JPEG" in err
    assert "c_garbage.jpg is not an image" in err
    assert code == 1  # something could not be read, the rest was still processed


def test_conf_is_applied(capsys, folder):
    _, low, _ = run(capsys, PHOTOS[0], "--json", "--conf", "0.1")
    _, high, _ = run(capsys, PHOTOS[0], "--json", "--conf", "0.5")
    low_dets, high_dets = json.loads(low)["detections"], json.loads(high)["detections"]
    assert len(low_dets) > len(high_dets)
    assert all(d["score"] >= 0.5 for d in high_dets)


def test_table_without_json(capsys):
    code, out, _ = run(capsys, PHOTOS[0])
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith(str(PHOTOS[0])) and "640x640" in first and "detection(s)" in first
    assert any(
        line.split()[0] in {"car", "truck", "bus", "person", "motorcycle"} for line in out.splitlines()[1:]
    )


def test_class_names_file_for_a_model_without_metadata(capsys, tmp_path):
    bare = tmp_path / "bare.onnx"
    shutil.copy(YOLOX, bare)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"thing{i}" for i in range(80)))
    _, numbered, _ = run(capsys, PHOTOS[0], "--model", bare, "--json")
    _, named, _ = run(
        capsys, PHOTOS[0], "--model", bare, "--json", "--class-names", names, "--decoder", "yolox"
    )
    numbered_classes = [d["class"] for d in json.loads(numbered)["detections"]]
    named_classes = [d["class"] for d in json.loads(named)["detections"]]
    assert numbered_classes and all(c.isdigit() for c in numbered_classes)
    assert named_classes == [f"thing{c}" for c in numbered_classes]


def test_missing_model_is_a_clear_error(capsys, tmp_path):
    code, out, err = run(capsys, PHOTOS[0], "--model", tmp_path / "missing.onnx")
    assert code == 1 and out == ""
    assert "missing.onnx does not exist" in err


def test_corrupt_model_is_a_clear_error(capsys, tmp_path):
    model = tmp_path / "corrupt.onnx"
    model.write_bytes(b"\x00garbage" * 100)
    code, _, err = run(capsys, PHOTOS[0], "--model", model)
    assert code == 1 and "corrupt.onnx is not an ONNX model" in err


def test_bad_option_values_are_named(capsys):
    code, _, err = run(capsys, PHOTOS[0], "--conf", "1.5")
    assert code == 1 and "conf" in err
    with pytest.raises(SystemExit):
        run(capsys, PHOTOS[0], "--decoder", "yolov9")


def test_nothing_to_read(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path / "nope", tmp_path)
    assert code == 1 and out == ""
    assert "nope does not exist" in err and "no images found" in err
