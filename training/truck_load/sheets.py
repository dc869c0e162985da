"""Contact sheets for labelling crops by eye: grids of numbered crops, in a seeded order per pass.

Each labelling pass gets its own order (``--seed``), so the second pass cannot follow the first
pass's sequence; ``order.csv`` maps the number printed under each crop back to its crop id, and
the labeller writes answers by number (``<number>,<label>`` lines). Crops are scaled to fill their
cell keeping their shape (small far trucks are enlarged), so a tarp or an open bed is visible.

    python -m training.truck_load.sheets work/manifest.csv work/crops work/pass1 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from streetwatch.errors import DatasetError
from training.truck_load.crops import read_manifest

CELL_WIDTH = 128
CELL_HEIGHT = 200
CAPTION = 18
COLUMNS = 8
ROWS = 5


def _cell(image: npt.NDArray[np.uint8], number: int) -> npt.NDArray[np.uint8]:
    cell = np.full((CELL_HEIGHT + CAPTION, CELL_WIDTH, 3), 40, dtype=np.uint8)
    h, w = image.shape[:2]
    scale = min((CELL_WIDTH - 4) / w, (CELL_HEIGHT - 4) / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    piece = cv2.resize(image, size, interpolation=interpolation)
    top, left = (CELL_HEIGHT - size[1]) // 2, (CELL_WIDTH - size[0]) // 2
    cell[top : top + size[1], left : left + size[0]] = piece
    label = f"{number}  {w}x{h}"
    cv2.putText(
        cell, label, (3, CELL_HEIGHT + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA
    )
    return cell


def make_sheets(manifest: Path, crops_dir: Path, out_dir: Path, seed: int) -> int:
    """Write ``sheet_NN.png`` and ``order.csv`` (number, crop_id) to ``out_dir``; return the sheet count."""
    crop_ids = [r.crop_id for r in read_manifest(manifest)]
    random.Random(seed).shuffle(crop_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "order.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("number", "crop_id"))
        writer.writerows((n, crop_id) for n, crop_id in enumerate(crop_ids, 1))
    per_sheet = COLUMNS * ROWS
    sheets = 0
    for start in range(0, len(crop_ids), per_sheet):
        cells = []
        for offset, crop_id in enumerate(crop_ids[start : start + per_sheet]):
            image: npt.NDArray[np.uint8] | None = cv2.imread(str(crops_dir / f"{crop_id}.jpg"))  # type: ignore[assignment]
            if image is None:
                raise DatasetError(f"cannot read crop {crop_id} in {crops_dir}")
            cells.append(_cell(image, start + offset + 1))
        blank = np.zeros_like(cells[0])
        cells += [blank] * (per_sheet - len(cells))
        rows = [np.hstack(cells[r * COLUMNS : (r + 1) * COLUMNS]) for r in range(ROWS)]
        sheets += 1
        cv2.imwrite(str(out_dir / f"sheet_{sheets:02d}.png"), np.vstack(rows))
    return sheets


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("crops", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, required=True, help="order of this pass (one seed per pass)")
    args = parser.parse_args(argv)
    print(f"{make_sheets(args.manifest, args.crops, args.out, args.seed)} sheets -> {args.out}")


if __name__ == "__main__":
    main()
