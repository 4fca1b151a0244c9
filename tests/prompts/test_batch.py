import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glmimage.errors import InputError
from glmimage.prompts.batch import MANIFEST, read_manifest, run_batch
from glmimage.prompts.brand import load_brand_kit
from glmimage.prompts.library import FilePromptLibrary

EXAMPLES = Path(__file__).parents[2] / "examples"


class CountingEngine:
    """The real engine, with its plan/decode calls counted (and optionally cut short to mimic a crash)."""

    def __init__(self, engine, fail_after_decodes: int | None = None):
        self.engine, self.fail_after = engine, fail_after_decodes
        self.plans, self.decodes = [], []

    @property
    def limits(self):
        return self.engine.limits

    def plan(self, prompt, **kw):
        self.plans.append(prompt)
        return self.engine.plan(prompt, **kw)

    def decode(self, plan, **kw):
        if self.fail_after is not None and len(self.decodes) >= self.fail_after:
            raise KeyboardInterrupt
        self.decodes.append(kw["seed"])
        return self.engine.decode(plan, **kw)


def write_batch(tmp_path: Path, rows: list[dict], name="b.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


ROWS = [
    {"id": "sign", "prompt": 'a shop sign "OPEN"', "variants": 3, "steps": 2},
    {"id": "card", "brief": {"role": "card", "subject": "a birthday", "texts": ["HI"]}, "variants": 2, "steps": 2,
     "seeds": [7, 9], "aspect": "landscape"},
]


def test_plan_once_decode_many_with_manifest_and_contact_sheet(tiny_engine, tmp_path):
    engine = CountingEngine(tiny_engine)
    report = run_batch(engine, write_batch(tmp_path, ROWS), tmp_path / "out", progress=False)
    assert (report.items, report.generated, report.skipped, report.plans) == (2, 5, 0, 2)
    assert len(engine.plans) == 2 and len(engine.decodes) == 5  # one plan per brief, one decode per variant
    records = read_manifest(tmp_path / "out")
    assert [(r["id"], r["variant"]) for r in records] == [
        ("sign", 0), ("sign", 1), ("sign", 2), ("card", 0), ("card", 1)]
    sign = [r for r in records if r["id"] == "sign"]
    assert len({r["plan_hash"] for r in sign}) == 1 and len({r["seed"] for r in sign}) == 3
    assert [r["seed"] for r in records if r["id"] == "card"] == [7, 9]
    card = records[3]
    assert card["glyph_texts"] == ["HI"] and (card["width"], card["height"]) == (96, 64) and card["steps"] == 2
    images = [np.asarray(Image.open(tmp_path / "out" / r["path"])) for r in sign]
    assert not np.array_equal(images[0], images[1])  # variants differ
    sheet = Image.open(report.contact_sheet)
    assert sheet.size == (3 * 128, 2 * (128 + 14))


def test_interrupted_batch_resumes_and_matches_an_uninterrupted_run(tiny_engine, tmp_path):
    batch = write_batch(tmp_path, ROWS)
    full = run_batch(tiny_engine, batch, tmp_path / "full", progress=False, contact_sheet=False)
    crashing = CountingEngine(tiny_engine, fail_after_decodes=2)
    with pytest.raises(KeyboardInterrupt):
        run_batch(crashing, batch, tmp_path / "resumed", progress=False)
    assert len(read_manifest(tmp_path / "resumed")) == 2
    (tmp_path / "resumed" / MANIFEST).open("a").write('{"id": "sign", "vari')  # a line cut mid-write
    again = CountingEngine(tiny_engine)
    report = run_batch(again, batch, tmp_path / "resumed", progress=False, contact_sheet=False)
    assert (report.generated, report.skipped) == (3, 2) and len(again.decodes) == 3
    for a, b in zip(full.records, report.records):
        assert (a["id"], a["variant"], a["seed"], a["plan_hash"]) == (b["id"], b["variant"], b["seed"], b["plan_hash"])
        assert np.array_equal(np.asarray(Image.open(tmp_path / "full" / a["path"])),
                              np.asarray(Image.open(tmp_path / "resumed" / b["path"])))
    # A third run has nothing left to do, not even planning.
    idle = CountingEngine(tiny_engine)
    report = run_batch(idle, batch, tmp_path / "resumed", progress=False, contact_sheet=False)
    assert report.generated == 0 and idle.plans == [] and report.skipped == 5


def test_changed_rows_do_not_silently_reuse_old_images(tiny_engine, tmp_path):
    run_batch(tiny_engine, write_batch(tmp_path, ROWS[:1]), tmp_path / "out", progress=False, contact_sheet=False)
    changed = [{**ROWS[0], "prompt": 'a shop sign "CLOSED"'}]
    with pytest.raises(InputError, match="'sign' made from a different prompt"):
        run_batch(tiny_engine, write_batch(tmp_path, changed, "c.jsonl"), tmp_path / "out", progress=False)


@pytest.mark.parametrize("row, message", [
    ({"id": "a", "prompt": "x", "colour": "red"}, r"row 2 \(a\): unknown columns \['colour'\]"),
    ({"id": "a", "prompt": "x", "brief": {"subject": "y"}}, r"exactly one of brief, request or prompt"),
    ({"id": "a/b", "prompt": "x"}, r"id 'a/b' must be letters"),
    ({"id": "a", "prompt": "x", "variants": 2, "seeds": [1]}, r"1 seeds for 2 variants"),
    ({"id": "a", "prompt": "x", "variants": 9}, r"batch row 'a': num_images=9 is out of bounds: policy 'default'"),
    ({"id": "a", "prompt": "x", "steps": 500}, r"batch row 'a': steps=500 is out of bounds"),
    ({"id": "a", "prompt": "x", "size": "100x64"}, r"batch row 'a': width=100 is not a valid size"),
    ({"id": "a", "brief": "missing.yaml"}, r"does not exist"),
])
def test_row_errors_name_the_row_before_any_work(tiny_engine, tmp_path, row, message):
    engine = CountingEngine(tiny_engine)
    with pytest.raises(InputError, match=message):
        run_batch(engine, write_batch(tmp_path, [{"id": "ok", "prompt": "fine", "steps": 2}, row]), tmp_path / "o",
                  progress=False)
    assert engine.plans == []


def test_duplicate_ids_and_bad_files(tiny_engine, tmp_path):
    with pytest.raises(InputError, match=r"repeated: \['x'\]"):
        run_batch(tiny_engine, write_batch(tmp_path, [{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}]),
                  tmp_path / "o", progress=False)
    (tmp_path / "b.txt").write_text("x")
    with pytest.raises(InputError, match="must end in .jsonl or .csv"):
        run_batch(tiny_engine, tmp_path / "b.txt", tmp_path / "o", progress=False)
    (tmp_path / "b.jsonl").write_text('{"id": "x", "prompt": "a"}\nnot json\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        run_batch(tiny_engine, tmp_path / "b.jsonl", tmp_path / "o", progress=False)


def test_csv_batch_with_brand_and_request_rows(tiny_engine, tmp_path):
    csv_path = tmp_path / "b.csv"
    csv_path.write_text(
        "id,brief,request,variants,seeds,steps\n"
        f"poster,{EXAMPLES / 'briefs' / 'cold_brew_poster.yaml'},,2,1 2,2\n"
        'banner,,"A wide banner for Acme\'s cold brew saying ""ICED""",1,,2\n'
    )
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    report = run_batch(tiny_engine, csv_path, tmp_path / "out", brand=acme, progress=False, contact_sheet=False)
    poster, _, banner = report.records
    assert [r["seed"] for r in report.records[:2]] == [1, 2] and poster["plan_seed"] != 1
    assert "Brand colours: navy blue (#1B2A49)" in poster["prompt"] and poster["height"] > poster["width"]
    assert banner["glyph_texts"] == ["ICED"] and banner["width"] > banner["height"]  # planner: banner role
    assert "poster" in report.warnings  # its footer line is too long for a 64 px wide image


def test_example_batch_runs_with_the_brand_kit(tiny_engine, tmp_path):
    acme = load_brand_kit(EXAMPLES / "brand" / "acme.yaml")
    library = FilePromptLibrary(EXAMPLES / "prompt_library")
    report = run_batch(tiny_engine, EXAMPLES / "batch" / "launch.jsonl", tmp_path / "out", brand=acme,
                       library=library, progress=False)
    modes = {r["id"]: r["mode"] for r in report.records}
    assert report.generated == 12 and modes["sticker"] == "image-to-image" and modes["poster"] == "text-to-image"
    assert {r["template"] for r in report.records if r["id"] == "story"} == {"launch-poster@2"}
