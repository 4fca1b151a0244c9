import numpy as np
import pytest
from PIL import Image

from glmimage.errors import InputError
from glmimage.prompts.colors import color_name, palette_distance, parse_hex, rgb_to_lab, to_hex


def test_lab_matches_published_values():
    # CIE L*a*b* (D65) of sRGB primaries, as tabulated by e.g. colormine.org / Bruce Lindbloom's calculator.
    expected = {(255, 255, 255): (100.0, 0.0, 0.0), (255, 0, 0): (53.24, 80.09, 67.20),
                (0, 255, 0): (87.73, -86.18, 83.18), (0, 0, 255): (32.30, 79.19, -107.86), (0, 0, 0): (0, 0, 0)}
    for rgb, lab in expected.items():
        assert np.allclose(rgb_to_lab(np.array(rgb)), lab, atol=0.05)


def test_hex_round_trip_and_errors():
    assert parse_hex("#1b2a49") == (27, 42, 73) and parse_hex("FFF") == (255, 255, 255)
    assert to_hex(parse_hex("#1b2a49")) == "#1B2A49"
    with pytest.raises(InputError, match="'navy' is not a hex colour"):
        parse_hex("navy")


def test_colour_names():
    assert color_name("#1C2B4A") == "navy blue"
    assert color_name("#FE8B02") == "orange"
    assert color_name("#FFFFFF") == "white"


def test_palette_distance_is_zero_on_palette_and_grows_off_it():
    half = Image.new("RGB", (20, 10), "#FF0000")
    half.paste(Image.new("RGB", (10, 10), "#0000FF"), (10, 0))
    assert palette_distance(half, ["#FF0000", "#0000FF"]) < 1e-6
    red_only = palette_distance(half, ["#FF0000"])
    # Half the pixels are blue: the mean is half the red-blue delta E.
    red_blue = float(np.linalg.norm(rgb_to_lab(np.array([255, 0, 0])) - rgb_to_lab(np.array([0, 0, 255]))))
    assert red_only == pytest.approx(red_blue / 2, rel=1e-6)
    assert palette_distance(half, ["#FF0000"], space="rgb") == pytest.approx(np.sqrt(2 * 255**2) / 2)
    with pytest.raises(InputError):
        palette_distance(half, [])
