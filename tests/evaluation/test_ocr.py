"""rapidocr runs offline on the models inside its wheel and reads the world's text; Tesseract, the second engine,
reads it too, with boxes in the same pixels."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from glmimage.data.fonts import load_font
from glmimage.evaluation.ocr import OcrConfig, _bundled_models, get_engine, read_text


@pytest.mark.parametrize("engine", ["rapidocr", "tesseract"])
def test_reads_a_rendered_title_with_its_box(engine):
    img = Image.new("RGB", (256, 256), (22, 32, 80))
    ImageDraw.Draw(img).text((30, 100), "BIG SALE", font=load_font("bold sans-serif", 36), fill=(255, 255, 255))
    lines = read_text(img, OcrConfig(engine=engine))
    assert [line.text for line in lines] == ["BIG SALE"]
    x0, y0, x1, y1 = lines[0].box
    assert 20 <= x0 <= 40 and 90 <= y0 <= 115 and 180 <= x1 <= 230 and y1 <= 150


def test_engine_is_loaded_once_from_bundled_models():
    assert get_engine(1) is get_engine(1)
    assert get_engine(1, 640) is not get_engine(1)
    for path in _bundled_models().values():
        assert path.endswith(".onnx")


@pytest.mark.parametrize("engine", ["rapidocr", "tesseract"])
def test_blank_image_reads_nothing(engine):
    assert read_text(Image.new("RGB", (128, 128), "white"), OcrConfig(engine=engine)) == []


def test_tesseract_reads_two_lines_in_order():
    img = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(img)
    draw.text((20, 40), "OPEN", font=load_font("bold sans-serif", 40), fill="black")
    draw.text((20, 150), "DAILY", font=load_font("bold sans-serif", 40), fill="navy")
    lines = read_text(img, OcrConfig(engine="tesseract"))
    assert [line.text for line in lines] == ["OPEN", "DAILY"]
    assert lines[0].box[3] < lines[1].box[1] and all(0.5 <= line.score <= 1 for line in lines)


def test_config_validation():
    with pytest.raises(ValueError):
        OcrConfig(upscale=10)
    with pytest.raises(ValueError):
        OcrConfig(threads=0)
    with pytest.raises(ValueError, match="engine"):
        OcrConfig(engine="easyocr")
