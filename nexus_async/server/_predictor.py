"""What a deployment "runs": the Predictor protocol and a small classical default model.

A predictor is any object with a ``predict(image) -> list[Prediction]`` method. The
runner calls it in a worker thread (``anyio.to_thread.run_sync``) with a decoded RGB
Pillow image, so it may be slow and CPU-bound, but it must be thread-safe when
``item_concurrency > 1``. Whatever it returns is checked against the spec's prediction
shape; a predictor that raises or returns something malformed makes the item
``FailedPredict`` with the reason in the job's log.

The default, ``ForegroundPredictor``, finds "the object" the way a classical
pipeline would: grayscale, Otsu threshold, the smaller class of pixels is foreground,
and its bounding box (normalised to 0..1) is the one prediction. Confidence is the
contrast between foreground and background, so a crisp dark square on white scores
near 1 and a faint smudge near 0. A uniform image has no foreground and no prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, TypedDict, runtime_checkable

from PIL import Image

__all__ = [
    "ForegroundPredictor",
    "Prediction",
    "PredictionError",
    "Predictor",
    "Tag",
    "check_predictions",
]

_MAX_SIDE = 512  # the box is normalised, so a thumbnail gives the same answer faster


class Tag(TypedDict):
    """A prediction's class: ``{"id": int, "name": str}``."""

    id: int
    name: str


class Prediction(TypedDict):
    """One prediction as delivered to webhooks (field names as on the wire)."""

    annotationId: int
    tag: Tag
    confidence: float
    boundType: str
    bound: list[list[float]]


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns a decoded image into predictions."""

    def predict(self, image: Image.Image) -> Sequence[Prediction]:
        """Return the predictions for one RGB image (called in a worker thread)."""
        ...


class PredictionError(ValueError):
    """Raised when a predictor's output does not have the spec's shape."""


def _otsu(histogram: Sequence[int]) -> int:
    """The threshold t that best splits the histogram into ``<= t`` and ``> t``."""
    total = sum(histogram)
    weighted_total = sum(level * count for level, count in enumerate(histogram))
    best_t, best_score = 0, -1.0
    below = 0
    below_weighted = 0
    for t in range(255):
        below += histogram[t]
        below_weighted += t * histogram[t]
        above = total - below
        if below == 0 or above == 0:
            continue
        mean_below = below_weighted / below
        mean_above = (weighted_total - below_weighted) / above
        score = below * above * (mean_below - mean_above) ** 2
        if score > best_score:
            best_t, best_score = t, score
    return best_t


class ForegroundPredictor:
    """Bounding box of the foreground (Otsu threshold on grayscale), one tag.

    Args:
        tag_id: the tag id reported with each prediction (default 0).
        tag_name: the tag name (default ``"foreground"``).
    """

    def __init__(self, tag_id: int = 0, tag_name: str = "foreground") -> None:
        self.tag: Tag = {"id": tag_id, "name": tag_name}

    def predict(self, image: Image.Image) -> list[Prediction]:
        gray = image.convert("L")
        if max(gray.size) > _MAX_SIDE:
            gray.thumbnail((_MAX_SIDE, _MAX_SIDE))
        width, height = gray.size
        histogram = gray.histogram()
        threshold = _otsu(histogram)
        dark = sum(histogram[: threshold + 1])
        bright = sum(histogram[threshold + 1 :])
        if dark == 0 or bright == 0:
            return []
        # The smaller class is the object; the larger one is the background.
        fg_bright = bright <= dark
        lut = [255 if (level > threshold) == fg_bright else 0 for level in range(256)]
        box = gray.point(lut).getbbox()
        if box is None:
            return []
        left, top, right, bottom = box
        x0, y0, x1, y1 = left / width, top / height, right / width, bottom / height

        def mean(lo: int, hi: int) -> float:
            count = sum(histogram[lo:hi])
            return sum(level * histogram[level] for level in range(lo, hi)) / count

        contrast = abs(mean(threshold + 1, 256) - mean(0, threshold + 1)) / 255.0
        return [
            {
                "annotationId": 0,
                "tag": {"id": self.tag["id"], "name": self.tag["name"]},
                "confidence": round(min(1.0, max(0.0, contrast)), 4),
                "boundType": "rectangle",
                # top-left, bottom-left, bottom-right, top-right
                "bound": [[x0, y0], [x0, y1], [x1, y1], [x1, y0]],
            }
        ]


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PredictionError(f"{where} must be a finite number (got {value!r})")
    return float(value)


def check_predictions(raw: object) -> list[dict[str, Any]]:
    """Validate and normalise a predictor's output into wire-ready dicts.

    Raises:
        PredictionError: naming the first field that does not fit the spec.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise PredictionError(f"a predictor must return a list (got {type(raw).__name__})")
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"prediction {index}"
        if not isinstance(item, dict):
            raise PredictionError(f"{where} must be a dict (got {type(item).__name__})")
        annotation = item.get("annotationId")
        if isinstance(annotation, bool) or not isinstance(annotation, int):
            raise PredictionError(f"{where}: annotationId must be an int (got {annotation!r})")
        tag = item.get("tag")
        if (
            not isinstance(tag, dict)
            or isinstance(tag.get("id"), bool)
            or not isinstance(tag.get("id"), int)
            or not isinstance(tag.get("name"), str)
        ):
            raise PredictionError(f"{where}: tag must be {{'id': int, 'name': str}} (got {tag!r})")
        confidence = _number(item.get("confidence"), f"{where}: confidence")
        if not 0.0 <= confidence <= 1.0:
            raise PredictionError(f"{where}: confidence must be within 0..1 (got {confidence})")
        bound_type = item.get("boundType")
        if not isinstance(bound_type, str):
            raise PredictionError(f"{where}: boundType must be a string (got {bound_type!r})")
        bound = item.get("bound")
        if not isinstance(bound, (list, tuple)) or not bound:
            raise PredictionError(f"{where}: bound must be a non-empty list of [x, y] points")
        if bound_type == "rectangle" and len(bound) != 4:
            raise PredictionError(f"{where}: a rectangle has 4 points (got {len(bound)})")
        points: list[list[float]] = []
        for point in bound:
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                raise PredictionError(f"{where}: every bound point must be [x, y] (got {point!r})")
            x = _number(point[0], f"{where}: bound x")
            y = _number(point[1], f"{where}: bound y")
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise PredictionError(
                    f"{where}: bound points are normalised to 0..1 (got {point!r})"
                )
            points.append([x, y])
        checked.append(
            {
                "annotationId": annotation,
                "tag": {"id": tag["id"], "name": tag["name"]},
                "confidence": confidence,
                "boundType": bound_type,
                "bound": points,
            }
        )
    return checked
