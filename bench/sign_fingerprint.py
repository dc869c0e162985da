"""How well the sign fingerprint tells one sign's re-sightings from other signs, on real crops.

    python -m bench.sign_fingerprint [--data ../shared/data/signboards] [--views 6] [--json]

Every labelled signboard of the shared signboard photos (train and val: about 280 real shop
signs) is cropped as the box would crop it. None of those photos shows one sign twice, so a
*re-sighting* is the crop made again the way a second patrol pass changes it
(:func:`resight`): another viewing angle (a perspective warp of up to 12 degrees of yaw),
another distance (0.35-1x the pixels), a box up to 8 % off on each side, brighter or darker
light (gain 0.6-1.4, gamma 0.7-1.4), slight blur, JPEG quality 45-90. *Different signs* are
every pair of distinct crops (signs next to each other in one photo included: they are what a
patrol passes in one street).

Prints ONE JSON object: the similarity distribution of same-sign pairs (each original against
its re-sightings) and of different-sign pairs, the separation (same-sign 1st percentile minus
different-sign 99th), the error rates at the best threshold and at ``SignSettings.min_similarity``,
the combined error against each part's alone (``error_ratio_vs_*``, lower is better), and the same figures
for each part alone and for colours + hash (the baselines the combination must beat).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from server.settings import SignSettings
from server.signs.fingerprint import (
    colour_layout_similarity,
    colour_similarity,
    fingerprint,
    fingerprint_image,
    gradient_similarity,
    layout_similarity,
    similarity,
)


def _colours_and_hash(a: dict[str, Any], b: dict[str, Any]) -> float:
    return (colour_similarity(a, b) + layout_similarity(a, b)) / 2


DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "signboards"


def crops(data: Path, min_side: int = 24) -> list[np.ndarray]:
    """Every labelled sign of ``data/{train,val}`` (YOLO labels), cropped from its photo."""
    out: list[np.ndarray] = []
    for split in ("train", "val"):
        for label in sorted((data / split / "labels").glob("*.txt")):
            image = cv2.imread(str(data / split / "images" / f"{label.stem}.jpg"))
            if image is None:
                continue
            height, width = image.shape[:2]
            for line in label.read_text().splitlines():
                parts = line.split()
                if len(parts) != 5:
                    continue
                cx, cy, w, h = (float(v) for v in parts[1:])
                x1, y1 = int((cx - w / 2) * width), int((cy - h / 2) * height)
                x2, y2 = int((cx + w / 2) * width), int((cy + h / 2) * height)
                x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
                if x2 - x1 >= min_side and y2 - y1 >= min_side:
                    out.append(image[y1:y2, x1:x2].copy())
    return out


def resight(crop: np.ndarray, rng: random.Random) -> np.ndarray:
    """The crop as a later pass might see it: angle, distance, box, light, blur, JPEG (see above)."""
    height, width = crop.shape[:2]
    # Viewing angle: the far side of the sign shrinks vertically (yaw up to ~12 degrees).
    shrink = rng.uniform(0.0, 0.1) * height
    near_left = rng.random() < 0.5
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    top_r, bot_r = (shrink, height - shrink) if near_left else (0, height)
    top_l, bot_l = (0, height) if near_left else (shrink, height - shrink)
    dst = np.array([[0, top_l], [width, top_r], [width, bot_r], [0, bot_l]], dtype=np.float32)
    warped = cv2.warpPerspective(
        crop, cv2.getPerspectiveTransform(src, dst), (width, height), borderMode=cv2.BORDER_REPLICATE
    )
    # The detector's box: up to 8 % off on each side (inside the warped crop).
    m = 0.08
    x1 = int(rng.uniform(0, m) * width)
    x2 = width - int(rng.uniform(0, m) * width)
    y1 = int(rng.uniform(0, m) * height)
    y2 = height - int(rng.uniform(0, m) * height)
    boxed = warped[y1:y2, x1:x2]
    # Distance: fewer pixels.
    scale = rng.uniform(0.35, 1.0)
    size = (max(8, int(boxed.shape[1] * scale)), max(8, int(boxed.shape[0] * scale)))
    small = cv2.resize(boxed, size, interpolation=cv2.INTER_AREA)
    # Light: gain and gamma.
    gain, gamma = rng.uniform(0.6, 1.4), rng.uniform(0.7, 1.4)
    lit = np.clip(255.0 * ((small.astype(np.float32) / 255.0) ** gamma) * gain, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        lit = cv2.GaussianBlur(lit, (3, 3), 0)
    ok, jpeg = cv2.imencode(".jpg", lit, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(45, 90)])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded


def _encode(image: np.ndarray) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return jpeg.tobytes()


def _summary(same: list[float], different: list[float], threshold: float | None) -> dict[str, Any]:
    s, d = np.asarray(same), np.asarray(different)
    best = max(
        (float(t) for t in np.linspace(0, 1, 201)),
        key=lambda t: -(float((s < t).mean()) + float((d >= t).mean())),
    )
    out: dict[str, Any] = {
        "same_sign": {
            "pairs": len(s),
            "min": float(s.min()),
            "p1": float(np.percentile(s, 1)),
            "p5": float(np.percentile(s, 5)),
            "median": float(np.median(s)),
        },
        "different_signs": {
            "pairs": len(d),
            "median": float(np.median(d)),
            "p95": float(np.percentile(d, 95)),
            "p99": float(np.percentile(d, 99)),
            "max": float(d.max()),
        },
        "separation_p1_minus_p99": round(float(np.percentile(s, 1) - np.percentile(d, 99)), 4),
        "best_threshold": round(best, 3),
        "errors_at_best": {
            "same_missed": float((s < best).mean()),
            "different_matched": float((d >= best).mean()),
        },
    }
    if threshold is not None:
        out["errors_at_min_similarity"] = {
            "threshold": threshold,
            "same_missed": round(float((s < threshold).mean()), 4),
            "different_matched": round(float((d >= threshold).mean()), 5),
        }
    return out


def measure(data: Path, views: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    originals = crops(data)
    prints = [fingerprint(_encode(c)) for c in originals]
    seen = [[fingerprint_image(resight(c, rng)) for _ in range(views)] for c in originals]
    scorers = {
        "combined": similarity,
        "colours_and_dct_hash": _colours_and_hash,
        "colours_only": colour_similarity,
        "dct_hash_only": layout_similarity,
        "gradients_only": gradient_similarity,
        "colour_layout_only": colour_layout_similarity,
    }
    result: dict[str, Any] = {"signs": len(originals), "views_per_sign": views}
    for name, score in scorers.items():
        same = [score(p, v) for p, vs in zip(prints, seen, strict=True) for v in vs]
        different = [score(a, b) for a, b in itertools.combinations(prints, 2)]
        threshold = SignSettings().min_similarity if name == "combined" else None
        result[name] = _summary(same, different, threshold)

    # The figure of merit: errors at each scorer's best threshold (missed same + matched different),
    # the combination against each part alone.
    def errors(name: str) -> float:
        e = result[name]["errors_at_best"]
        return float(e["same_missed"] + e["different_matched"])

    for base in [name for name in scorers if name != "combined"]:
        result[f"error_ratio_vs_{base}"] = round(errors("combined") / max(errors(base), 1e-9), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="signboards folder (train/, val/)")
    parser.add_argument("--views", type=int, default=6, help="simulated re-sightings per sign")
    args = parser.parse_args(argv)
    if not (args.data / "val" / "labels").is_dir():
        print(f"no signboard photos at {args.data} (expected val/labels and val/images)", file=sys.stderr)
        return 2
    print(json.dumps(measure(args.data, args.views), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
