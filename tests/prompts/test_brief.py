from pathlib import Path

import pytest

from glmimage.errors import InputError
from glmimage.prompts.brand import load_brand_kit
from glmimage.prompts.brief import ROLES, Brief, Region, brief_from_dict, compile_brief, load_brief
from glmimage.prompts.glyph_text import extract_glyph_texts
from glmimage.prompts.library import FilePromptLibrary
from glmimage.prompts.sizes import limits_for_model, size_for_aspect

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_compiled_prompt_quotes_exactly_the_briefs_texts_in_order():
    brief = Brief(
        subject="Joe's 'famous' coffee",  # quotes in free text must not become glyph text
        role="product-photo",
        layout=(Region("top", "a headline", "COLD BREW"), Region("in the corner", "a price tag", "$4.99"),
                Region("center", "the can")),
        texts=("Don't miss it",),
        style='glossy, "premium" look',
        palette=("#1B2A49",),
    )
    out = compile_brief(brief)
    assert out.glyph_texts == extract_glyph_texts(out.prompt) == ["COLD BREW", "$4.99", "Don\u2019t miss it"]
    assert out.prompt.startswith("A professional studio product photograph of Joe\u2019s \u2019famous\u2019 coffee.")
    assert 'At the top, a headline reading "COLD BREW"; in the corner, a price tag reading "$4.99"' in out.prompt
    assert "navy blue (#1B2A49)" in out.prompt and out.mode == "text-to-image"
    assert out.width is None and out.warnings == []


def test_roles_and_validation():
    for role in ROLES:
        assert compile_brief(Brief(subject="tea", role=role)).prompt
    with pytest.raises(InputError, match="unknown role 'meme'"):
        Brief(subject="x", role="meme")
    with pytest.raises(InputError, match="needs a subject"):
        Brief(subject=" ")
    with pytest.raises(InputError, match="needs content or text"):
        Region("top")
    with pytest.raises(InputError, match=r"unknown brief keys \['colour'\]"):
        brief_from_dict({"subject": "x", "colour": "red"})
    with pytest.raises(InputError, match="variables must be a mapping"):
        brief_from_dict({"subject": "x", "template": "t@1", "variables": ["a"]})
    with pytest.raises(InputError, match=r"layout\[0\] has unknown keys \['txt'\]"):
        brief_from_dict({"subject": "x", "layout": [{"position": "top", "txt": "A"}]})


def test_size_resolution_and_fit_warnings_with_model_limits():
    brief = Brief(subject="a sale", aspect="slide", texts=("SALE",))
    out = compile_brief(brief, limits=limits_for_model("official"))
    assert (out.width, out.height) == size_for_aspect("slide", limits_for_model("official")) and out.warnings == []
    crowded = Brief(subject="terms", texts=("All prices include tax and delivery within three days " * 3,))
    out = compile_brief(crowded, limits=limits_for_model("tiny"))
    assert (out.width, out.height) == (64, 64) and out.warnings and "characters" in out.warnings[-1].message
    with pytest.raises(InputError, match="width=100"):
        compile_brief(Brief(subject="x", width=100, height=64), limits=limits_for_model("tiny"))


def test_brand_kit_is_applied_and_enforced():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    out = compile_brief(Brief(subject="Acme iced coffee", texts=("ICED",)), acme)
    assert "Brand colours: navy blue (#1B2A49), orange (#FF8C00), cream (#FFFDD0)." in out.prompt
    assert "Typography: geometric sans-serif, bold uppercase headlines." in out.prompt
    assert "Tone: warm, confident, plain words." in out.prompt and out.glyph_texts == ["ICED"]
    # A brief's own palette narrows the brand's.
    own = compile_brief(Brief(subject="Acme tea", palette=("#FF8C00",)), acme)
    assert "Brand colours" not in own.prompt and "orange (#FF8C00)" in own.prompt
    with pytest.raises(InputError, match=r"forbidden by brand 'Acme Coffee': \['free'\]"):
        compile_brief(Brief(subject="Acme coffee", texts=("FREE REFILLS",)), acme)
    with pytest.raises(InputError, match="lacks words required"):
        compile_brief(Brief(subject="coffee"), acme)


def test_brand_references_make_an_edit_that_follows_the_logo_size():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    brief = load_brief(EXAMPLES / "briefs" / "logo_sticker.yaml")
    out = compile_brief(brief, acme, limits=limits_for_model("nano"))
    assert out.mode == "image-to-image" and out.references == [acme.references["logo"]]
    assert (out.width, out.height) == (128, 128)  # the 128x128 logo, within nano's 128..512
    assert "Keep the logo from the reference images." in out.prompt
    with pytest.raises(InputError, match="no brand kit given"):
        compile_brief(brief)
    too_many = Brief(subject="Acme", references=tuple([acme.references["logo"]] * 4), brand_references=("logo",))
    with pytest.raises(InputError, match="1 to 4 reference images, got 5"):
        compile_brief(too_many, acme)


def test_template_briefs_render_from_the_library():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    library = FilePromptLibrary(EXAMPLES / "prompt_library")
    brief = load_brief(EXAMPLES / "briefs" / "launch_from_template.yaml")
    out = compile_brief(brief, acme, library=library, limits=limits_for_model("nano"))
    assert out.template == "launch-poster@2" and out.glyph_texts == ["NOW POURING", "2 for 1 on Fridays"]
    assert out.prompt.endswith("Tone: warm, confident, plain words.") and out.height > out.width
    pinned = compile_brief(Brief(**{**brief.__dict__, "template": "launch-poster@1"}), acme, library=library)
    assert pinned.glyph_texts == ["NOW POURING"]
    with pytest.raises(InputError, match="no prompt library"):
        compile_brief(brief, acme)


def test_example_briefs_all_compile():
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    library = FilePromptLibrary(EXAMPLES / "prompt_library")
    for path in sorted((EXAMPLES / "briefs").glob("*.yaml")):
        out = compile_brief(load_brief(path), acme, limits=limits_for_model("nano"), library=library)
        assert out.glyph_texts and out.width and out.height, path.name


def test_to_dict_round_trips():
    brief = Brief(subject="tea", layout=(Region("top", "title", "TEA"),), palette=("#ffffff",), aspect="story")
    assert brief_from_dict(brief.to_dict()) == brief
