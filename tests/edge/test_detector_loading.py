"""Loading a model: metadata, sidecar, overrides, providers, and the errors for bad models."""

import logging
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.config import DetectorConfig
from edge.detector import load_detector
from edge.detector.metadata import from_onnx_props, load_class_names_file
from edge.detector.session import choose_providers
from streetwatch.errors import ConfigError, ModelFormatError, ModelNotFoundError
from streetwatch.paths import models_dir

YOLOX = models_dir() / "yolox_nano" / "yolox_nano.onnx"


@pytest.fixture
def bare_yolox(tmp_path):
    """The YOLOX file alone, without its sidecar: a model that says nothing about itself."""
    path = tmp_path / "bare.onnx"
    shutil.copy(YOLOX, path)
    return path


def test_missing_model_names_the_path_and_what_to_put_there(tmp_path):
    missing = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(ModelNotFoundError, match=r"nowhere/model\.onnx") as err:
        load_detector(DetectorConfig(model=str(missing)))
    assert "put the ONNX file there" in str(err.value)


def test_random_bytes_are_not_a_model(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(ModelFormatError, match=r"corrupt\.onnx"):
        load_detector(DetectorConfig(model=str(path)))


def test_an_output_no_decoder_understands_is_a_format_error(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["output"])],
        "flat",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3072])],
    )
    path = tmp_path / "flat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(ModelFormatError, match=r"no decoder understands an output of shape \(1, 3072\)"):
        load_detector(DetectorConfig(model=str(path)))


def test_forced_decoder_that_does_not_fit_says_so():
    with pytest.raises(ModelFormatError, match="decoder 'yolov8_end2end' expects"):
        load_detector(DetectorConfig(model=str(YOLOX), decoder="yolov8_end2end"))


def test_model_without_metadata_is_recognised_and_reports_class_numbers(bare_yolox, caplog):
    with caplog.at_level(logging.WARNING):
        detector = load_detector(DetectorConfig(model=str(bare_yolox)))
    assert detector.backend.name == "yolox"
    assert detector.info.name == "bare"
    assert detector.info.version.startswith("sha256:e8af074932d4")
    assert detector.info.class_names[:3] == ("0", "1", "2")
    assert "names no classes" in caplog.text


def test_config_overrides_name_version_and_classes(bare_yolox):
    names = list(load_class_names_file(models_dir() / "yolox_nano" / "coco80.yaml"))
    detector = load_detector(
        DetectorConfig(model=str(bare_yolox), class_names=names, name="coco", version="7")
    )
    assert (detector.info.name, detector.info.version) == ("coco", "7")
    assert detector.info.class_names[0] == "person"


def test_wrong_number_of_class_names_is_refused(bare_yolox):
    with pytest.raises(ModelFormatError, match="80 classes but 2 class names"):
        load_detector(DetectorConfig(model=str(bare_yolox), class_names=["a", "b"]))


def test_unknown_keep_class_is_a_config_error():
    with pytest.raises(ConfigError, match="trucks"):
        load_detector(DetectorConfig(model=str(YOLOX), keep_classes=["trucks"]))


def test_imgsz_that_contradicts_a_fixed_input_is_a_config_error():
    with pytest.raises(ConfigError, match="fixed at 416×416"):
        load_detector(DetectorConfig(model=str(YOLOX), imgsz=640))


def test_sidecar_with_unknown_key_is_refused(bare_yolox):
    bare_yolox.with_suffix(".yaml").write_text("nmae: typo\n")
    with pytest.raises(ModelFormatError, match="nmae"):
        load_detector(DetectorConfig(model=str(bare_yolox)))


def test_falls_back_to_cpu_with_one_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="edge.detector"):
        detector = load_detector(DetectorConfig(model=str(YOLOX)))
    assert detector.providers == ["CPUExecutionProvider"]
    lines = [r.getMessage() for r in caplog.records if "running on" in r.getMessage()]
    assert len(lines) == 1
    assert "CPUExecutionProvider" in lines[0] and "TensorrtExecutionProvider" in lines[0]


def test_choose_providers_keeps_order_and_always_ends_on_cpu():
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider"], available) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert choose_providers([], available) == ["CPUExecutionProvider"]


def test_ultralytics_metadata_is_parsed():
    meta = from_onnx_props(
        {
            "names": "{0: 'person', 1: 'truck'}",
            "imgsz": "[320, 416]",
            "version": "8.4.1",
            "streetwatch_model": "streetwatch-v1",
            "data_hash": "abc",
            "args": "{'batch': 1, 'nms': True}",
        },
        "m.onnx",
    )
    assert meta.class_names == ("person", "truck")
    assert meta.input_hw == (320, 416)
    assert (meta.name, meta.version, meta.data_hash, meta.nms_included) == (
        "streetwatch-v1",
        "8.4.1",
        "abc",
        True,
    )


def test_class_names_files_in_three_shapes(tmp_path):
    (tmp_path / "a.txt").write_text("car\n\ntruck\n")
    (tmp_path / "b.yaml").write_text("names: {0: car, 1: truck}\n")
    (tmp_path / "c.yaml").write_text("- car\n- truck\n")
    for name in ("a.txt", "b.yaml", "c.yaml"):
        assert load_class_names_file(tmp_path / name) == ("car", "truck")
    (tmp_path / "gap.yaml").write_text("names: {0: car, 2: truck}\n")
    with pytest.raises(ModelFormatError, match="without gaps"):
        load_class_names_file(tmp_path / "gap.yaml")
