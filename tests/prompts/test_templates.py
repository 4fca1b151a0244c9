import pytest

from glmimage.errors import InputError
from glmimage.prompts.glyph_text import extract_glyph_texts
from glmimage.prompts.library import FilePromptLibrary, parse_ref
from glmimage.prompts.templates import PromptTemplate, render_template

SOURCE = """A poster for {{ product }}.
At the top, the headline {{ headline | glyph }}.
{% for item in items %}A sticker reading {{ item | glyph }}. {% endfor %}"""


def test_render_quotes_only_glyph_filtered_values():
    t = PromptTemplate("poster", 1, SOURCE)
    assert t.variables == {"product", "headline", "items"}
    prompt = t.render({"product": 'Joe\'s "best" coffee', "headline": "SALE", "items": ["NEW", "HOT"]})
    assert extract_glyph_texts(prompt) == ["SALE", "NEW", "HOT"]
    assert prompt.startswith("A poster for Joe\u2019s \u2033best\u2033 coffee. At the top")  # one paragraph
    assert "\n" not in prompt


def test_missing_variables_are_named():
    with pytest.raises(InputError, match=r"needs variables \['headline', 'items'\]"):
        PromptTemplate("poster", 1, SOURCE).render({"product": "tea"})
    with pytest.raises(InputError, match="has no attribute 'nope'"):
        render_template("{{ x.nope }}", {"x": {}})


def test_defaults_fill_optional_variables():
    t = PromptTemplate("p", 2, "A {{ colour }} sign {{ text | glyph }}", defaults={"colour": "red"})
    assert t.render({"text": "OPEN"}) == 'A red sign "OPEN"'
    assert t.render({"text": "OPEN", "colour": "blue"}) == 'A blue sign "OPEN"'


def test_the_sandbox_blocks_python_internals():
    with pytest.raises(InputError, match="sandbox forbids"):
        render_template("{{ x.__class__.__mro__[1].__subclasses__() }}", {"x": 1})
    with pytest.raises(InputError, match="sandbox forbids"):
        render_template("{{ f.__globals__ }}", {"f": render_template})


def test_bad_templates_fail_when_made():
    with pytest.raises(InputError, match="line 1"):
        PromptTemplate("p", 1, "{% if %}")
    with pytest.raises(InputError, match="template name"):
        PromptTemplate("../etc", 1, "x")
    with pytest.raises(InputError, match="version"):
        PromptTemplate("p", 0, "x")


def test_library_versions_are_append_only(tmp_path):
    lib = FilePromptLibrary(tmp_path)
    assert lib.names() == []
    v1 = lib.add("sign", "A sign {{ t | glyph }}", description="first")
    v2 = lib.add("sign", "A neon sign {{ t | glyph }}")
    assert (v1.version, v2.version) == (1, 2) and lib.versions("sign") == [1, 2] and lib.names() == ["sign"]
    assert lib.get("sign").render({"t": "BAR"}) == 'A neon sign "BAR"'
    assert lib.get("sign", 1).render({"t": "BAR"}) == 'A sign "BAR"'
    assert lib.resolve("sign@1").description == "first"
    with pytest.raises(InputError, match=r"no version 3; versions: \[1, 2\]"):
        lib.get("sign", 3)
    with pytest.raises(InputError, match="no template 'menu'"):
        lib.get("menu")
    # A writer holding a stale version list (a concurrent add) gets an error instead of overwriting v2.
    lib.versions = lambda name: [1]
    with pytest.raises(FileExistsError):
        lib.add("sign", "something else")
    assert FilePromptLibrary(tmp_path).get("sign", 2).source == "A neon sign {{ t | glyph }}"


def test_parse_ref():
    assert parse_ref("poster@3") == ("poster", 3) and parse_ref("poster") == ("poster", None)
    with pytest.raises(InputError):
        parse_ref("poster@latest")


def test_shipped_example_library():
    from pathlib import Path

    lib = FilePromptLibrary(Path(__file__).parents[2] / "examples" / "prompt_library")
    assert lib.versions("launch-poster") == [1, 2]
    prompt = lib.get("launch-poster").render({"product": "tea", "headline": "HI"})
    assert extract_glyph_texts(prompt) == ["HI"]  # v2's offer line is optional
