"""The default predictor and the check applied to any predictor's output."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, ImageDraw

from nexus_async.server import ForegroundPredictor, PredictionError, Predictor
from nexus_async.server._predictor import check_predictions


def picture(
    size: tuple[int, int], box: tuple[int, int, int, int], bg: int, ink: int
) -> Image.Image:
    image = Image.new("RGB", size, (bg, bg, bg))
    ImageDraw.Draw(image).rectangle(box, fill=(ink, ink, ink))
    return image


@pytest.mark.parametrize(("bg", "ink"), [(255, 0), (0, 255), (200, 40)])
def test_box_of_the_foreground_in_spec_point_order(bg: int, ink: int) -> None:
    # A 20x10 image with the rectangle covering columns 4..9 and rows 2..6 (inclusive).
    [prediction] = ForegroundPredictor().predict(picture((20, 10), (4, 2, 9, 6), bg, ink))
    assert prediction["boundType"] == "rectangle"
    assert prediction["tag"] == {"id": 0, "name": "foreground"}
    x0, y0, x1, y1 = 4 / 20, 2 / 10, 10 / 20, 7 / 10
    # top-left, bottom-left, bottom-right, top-right
    flat = [v for point in prediction["bound"] for v in point]
    assert flat == pytest.approx([x0, y0, x0, y1, x1, y1, x1, y0])
    assert prediction["confidence"] == pytest.approx(abs(bg - ink) / 255, abs=0.01)
    assert check_predictions([prediction]) == [prediction]


def test_large_images_are_thumbnailed_with_the_same_normalised_box() -> None:
    [prediction] = ForegroundPredictor().predict(
        picture((2000, 1000), (400, 200, 999, 699), 255, 0)
    )
    assert prediction["bound"][0] == pytest.approx([0.2, 0.2], abs=0.01)
    assert prediction["bound"][2] == pytest.approx([0.5, 0.7], abs=0.01)


def test_uniform_image_has_no_prediction() -> None:
    assert ForegroundPredictor().predict(Image.new("RGB", (8, 8), (90, 90, 90))) == []


def test_custom_tag_and_protocol() -> None:
    predictor = ForegroundPredictor(tag_id=7, tag_name="cell")
    assert isinstance(predictor, Predictor)
    [prediction] = predictor.predict(picture((8, 8), (1, 1, 3, 3), 255, 0))
    assert prediction["tag"] == {"id": 7, "name": "cell"}


GOOD: dict[str, Any] = {
    "annotationId": 1,
    "tag": {"id": 0, "name": "x"},
    "confidence": 0.5,
    "boundType": "rectangle",
    "bound": [[0, 0], [0, 1], [1, 1], [1, 0]],
}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("nope", "must return a list"),
        ([1], "must be a dict"),
        ([{**GOOD, "annotationId": "1"}], "annotationId"),
        ([{**GOOD, "tag": {"id": 0}}], "tag"),
        ([{**GOOD, "tag": {"id": True, "name": "x"}}], "tag"),
        ([{**GOOD, "confidence": 1.5}], "confidence"),
        ([{**GOOD, "confidence": float("nan")}], "confidence"),
        ([{**GOOD, "boundType": None}], "boundType"),
        ([{**GOOD, "bound": []}], "bound"),
        ([{**GOOD, "bound": [[0, 0], [1, 1]]}], "4 points"),
        ([{**GOOD, "bound": [[0, 0], [0, 2], [1, 1], [1, 0]]}], "normalised"),
        ([{**GOOD, "bound": [[0, 0, 0], [0, 1], [1, 1], [1, 0]]}], r"\[x, y\]"),
    ],
)
def test_malformed_predictions_are_rejected(output: object, message: str) -> None:
    with pytest.raises(PredictionError, match=message):
        check_predictions(output)


def test_valid_predictions_are_normalised_to_floats() -> None:
    [checked] = check_predictions([GOOD])
    assert checked["bound"] == [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
    assert all(isinstance(v, float) for point in checked["bound"] for v in point)
