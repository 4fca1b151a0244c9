import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from glmimage.service.qa import (
    OcrTextChecker,
    QAConfig,
    check_blank,
    check_flat,
    check_resolution,
    fine_detail_ratio,
    luminance,
    run_checks,
    text_match_score,
)
from glmimage.service.safety import SafetyPolicy

CONFIG = QAConfig()


def noise(size=128, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def text_image(text: str, size=(320, 128)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    scale = size[1] / 128
    ImageDraw.Draw(image).text((16 * scale, 28 * scale), text, fill="black",
                               font=ImageFont.load_default(size=56 * scale))
    return image


def test_blank_and_flat():
    solid = Image.new("RGB", (128, 128), (200, 30, 30))
    assert not check_blank(solid, CONFIG).passed and not check_flat(solid, CONFIG).passed
    ramp = Image.fromarray(np.tile(np.arange(128, dtype=np.uint8), (128, 1)))  # a smooth gradient
    assert check_blank(ramp, CONFIG).passed and not check_flat(ramp, CONFIG).passed
    assert check_blank(noise(), CONFIG).passed and check_flat(noise(), CONFIG).passed


def test_under_resolved_images_are_caught():
    sharp_text = text_image("SALE", (256, 256))
    assert check_resolution(sharp_text, 256, 256, CONFIG).passed and check_resolution(noise(), 128, 128, CONFIG).passed
    blocky = noise(64).resize((128, 128), Image.Resampling.NEAREST)  # pixels repeated 2x
    assert fine_detail_ratio(luminance(blocky)) == pytest.approx(0.0, abs=1e-6)
    soft = text_image("SALE", (64, 64)).resize((256, 256), Image.Resampling.BICUBIC)  # drawn at 1/4 size
    for upscaled, side in ((blocky, 128), (soft, 256)):
        result = check_resolution(upscaled, side, side, CONFIG)
        assert not result.passed and "high-band" in result.detail
    wrong = check_resolution(noise(), 128, 64, CONFIG)
    assert not wrong.passed and "asked 128x64" in wrong.detail


def test_text_score_is_the_mean_flow_grpo_reward():
    assert text_match_score("GRAND SALE today", ["sale"]) == 1.0  # contained, spaces and case ignored
    assert text_match_score("SALF", ["SALE", "SALF"]) == pytest.approx((0.75 + 1.0) / 2)
    assert text_match_score("", ["SALE"]) == 0.0
    assert text_match_score("anything", ["", " "]) == 1.0  # nothing to look for


@pytest.fixture(scope="module")
def ocr():
    return OcrTextChecker()


def test_text_check_with_real_ocr(ocr):
    image = text_image("SALE")
    assert ocr.score(image, ["SALE"]) >= 0.75
    assert ocr.score(image, ["WXYZ"]) <= 0.25
    checks = {c.check: c for c in run_checks(image, width=320, height=128, expected_texts=["SALE"], config=CONFIG,
                                              text_checker=ocr, safety=SafetyPolicy.load(None))}
    assert checks["text"].passed and checks["text"].score >= 0.75
    assert "content_policy" not in checks


def test_output_policy_reads_the_rendered_text(ocr):
    image = text_image("NSFW")
    checks = {c.check: c for c in run_checks(image, width=320, height=128, expected_texts=[], config=CONFIG,
                                              text_checker=ocr, safety=SafetyPolicy.load(None))}
    assert "text" not in checks  # nothing was asked for
    assert not checks["content_policy"].passed and "sexual_content" in checks["content_policy"].detail
