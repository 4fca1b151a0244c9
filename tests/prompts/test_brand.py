from pathlib import Path

import pytest
from PIL import Image

from glmimage.errors import InputError
from glmimage.prompts.brand import BrandKit, find_words, load_brand_kit

EXAMPLES = Path(__file__).parents[2] / "examples"


def kit(**kw) -> BrandKit:
    base = {"name": "Acme", "palette": ("#1b2a49", "#FF8C00"), "required_words": ("Acme",),
            "forbidden_words": ("cheap", "free shipping")}
    return BrandKit(**{**base, **kw})


def test_kit_normalises_and_validates():
    assert kit().palette == ("#1B2A49", "#FF8C00")
    with pytest.raises(InputError, match="'#12' is not a hex colour"):
        kit(palette=("#12",))
    with pytest.raises(InputError, match=r"both required and forbidden .*\['cheap'\]"):
        kit(required_words=("Cheap",))
    with pytest.raises(InputError, match="role 'banner'"):
        kit(references={"banner": "x.png"})


def test_prompt_word_rules():
    kit().check_prompt("An Acme poster")
    with pytest.raises(InputError, match=r"forbidden by brand 'Acme': \['cheap'\]"):
        kit().check_prompt("A cheap Acme poster")
    with pytest.raises(InputError, match=r"lacks words required by brand 'Acme': \['Acme'\]"):
        kit().check_prompt("A poster")
    kit().check_prompt("An Acme poster about cheapness")  # whole words only


def test_find_words_tolerates_ocr_spacing_and_case():
    assert find_words("FREESHIPPING on all orders", ["free shipping"]) == ["free shipping"]
    assert find_words("Free\nShipping!", ["free shipping", "cheap"]) == ["free shipping"]
    assert find_words("freely shipping", ["free shipping"]) == []


def test_qa_flags_forbidden_ocr_words_and_off_palette_images():
    on_brand = Image.new("RGB", (32, 32), "#1B2A49")
    report = kit().qa(on_brand, ocr_text="ACME COFFEE")
    assert report.passed and report.palette_distance < 1 and report.problems() == []
    off = kit().qa(Image.new("RGB", (32, 32), "#00FF00"), ocr_text="cheap coffee")
    assert not off.passed and off.forbidden_found == ["cheap"] and off.palette_distance > 30
    assert len(off.problems()) == 2 and "delta E" in off.problems()[1]
    assert kit(palette=()).qa(on_brand, "").palette_distance is None


def test_example_kit_loads_with_references_relative_to_the_file():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    assert acme.name == "Acme Coffee" and acme.required_words == ("Acme",)
    [logo] = acme.load_references(["logo"])
    assert logo.size == (128, 128) and logo.mode == "RGB"
    # The logo itself is drawn in the brand colours.
    assert acme.qa(logo, "").on_palette
    with pytest.raises(InputError, match="no 'mascot' reference"):
        acme.reference_paths(["mascot"])


def test_load_errors_name_the_problem(tmp_path):
    bad = tmp_path / "kit.yaml"
    bad.write_text("name: X\ncolours: [red]\n")
    with pytest.raises(InputError, match=r"unknown brand kit keys \['colours'\]"):
        load_brand_kit(bad)
    bad.write_text("name: X\nforbidden_words: cheap\nreferences: {logo: missing.png}\n")
    k = load_brand_kit(bad)
    assert k.forbidden_words == ("cheap",)
    with pytest.raises(InputError, match="does not exist"):
        k.reference_paths(["logo"])
    with pytest.raises(InputError, match="does not exist"):
        load_brand_kit(tmp_path / "nope.yaml")


def test_apply_to_prompt_for_generations_and_edits():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    edit = acme.apply_to_prompt('Put the Acme logo on the mug and write "MORNING"')
    assert edit.endswith(
        "Typography: geometric sans-serif, bold uppercase headlines. Tone: warm, confident, plain words.")
    assert "Brand colours: navy blue (#1B2A49)" in edit
    assert "Brand colours" not in acme.apply_to_prompt("An Acme mug", include_palette=False)
    with pytest.raises(InputError, match="forbidden"):
        acme.apply_to_prompt("An Acme mug, free today")
    from glmimage.policy import IMAGE_TO_IMAGE, GenerationRequest, route

    request = GenerationRequest(prompt=edit, references=(Image.new("RGB", (64, 64)), *acme.load_references(["logo"])))
    assert route(request) == IMAGE_TO_IMAGE and len(request.references) == 2
