"""Content hashes of YOLO datasets, so a model and its metrics name the exact data behind them.

A split's hash covers every image's bytes and its label file's text, in a stable order,
plus the class names. Two copies of the same data in different folders hash the same;
changing one label line or one pixel changes the hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from streetwatch.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_data_yaml(data_yaml: Path) -> dict[str, object]:
    if not data_yaml.is_file():
        raise DatasetError(f"dataset yaml not found: {data_yaml}")
    loaded = yaml.safe_load(data_yaml.read_text())
    if not isinstance(loaded, dict) or "names" not in loaded:
        raise DatasetError(f"{data_yaml}: expected a mapping with 'names' and split paths")
    return loaded


def class_names(data_yaml: Path) -> list[str]:
    names = load_data_yaml(data_yaml)["names"]
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetError(f"{data_yaml}: 'names' must be a list or a mapping")


def split_images(data_yaml: Path, split: str) -> list[Path]:
    """The image files of ``split`` ('train'/'val'/'test'): a folder, a .txt list, or a list of those."""
    data = load_data_yaml(data_yaml)
    if split not in data:
        raise DatasetError(f"{data_yaml}: no '{split}' split")
    root = Path(str(data.get("path") or data_yaml.parent))
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    raw = data[split]
    entries: list[object] = list(raw) if isinstance(raw, list) else [raw]
    images: list[Path] = []
    for entry in entries:
        path = Path(str(entry))
        path = path if path.is_absolute() else root / path
        if path.is_dir():
            images.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file() and path.suffix == ".txt":
            for line in path.read_text().splitlines():
                if line.strip():
                    item = Path(line.strip())
                    images.append(item if item.is_absolute() else root / item)
        else:
            raise DatasetError(f"{data_yaml}: split '{split}' points at {path}, which does not exist")
    return images


def label_for(image: Path) -> Path:
    """The YOLO label file beside an image (``.../images/x.jpg`` -> ``.../labels/x.txt``)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def split_hash(data_yaml: Path, split: str) -> str:
    """sha256 over class names, then each image's bytes and label text, ordered by file name."""
    digest = hashlib.sha256()
    digest.update("\n".join(class_names(data_yaml)).encode())
    for image in sorted(split_images(data_yaml, split), key=lambda p: (p.name, str(p))):
        digest.update(image.name.encode())
        digest.update(hashlib.sha256(image.read_bytes()).digest())
        label = label_for(image)
        digest.update(label.read_bytes() if label.exists() else b"<no label>")
    return digest.hexdigest()


def dataset_hash(data_yaml: Path) -> str:
    """One hash for the training data: train and val split hashes combined."""
    data = load_data_yaml(data_yaml)
    splits = [split for split in ("train", "val", "test") if data.get(split)]
    parts = [f"{split}:{split_hash(data_yaml, split)}" for split in splits]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
