"""Batches of briefs x variants: plan each brief once, decode each variant from that plan, and record every
finished image in a manifest so that an interrupted batch resumes where it stopped.

A batch file is JSONL (one object per line) or CSV (a header row), one row per brief:

    id        a name for the row (default: row-<n>); images go to <out>/<id>/v<k>.png
    brief     a brief file (path relative to the batch file), or in JSONL an inline brief mapping
    request   instead of a brief: a one-line request expanded by the planner hook
    prompt    instead of a brief: a finished prompt, used as it is
    variants  images to make from the one plan (default 1; bounded by the policy's num_images)
    seeds     the variants' latent seeds (JSONL list or CSV "1 2 3"; default: seed, seed+1, ...)
    seed      the plan's seed (default: derived from the id, so reruns agree)
    steps, guidance, size ("WxH"), aspect ("slide", "16:9")   per-row parameters, checked by the policy
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.errors import InputError
from glmimage.models.sizes import parse_size, resolve_size
from glmimage.policy.parameters import ParameterPolicy, load_policy
from glmimage.policy.request import GenerationRequest
from glmimage.prompts.brand import BrandKit
from glmimage.prompts.brief import Brief, CompiledPrompt, brief_from_dict, compile_brief, load_brief
from glmimage.prompts.glyph_text import fit_warnings
from glmimage.prompts.library import PromptLibrary
from glmimage.prompts.planner_hook import PlannerHook, RuleBasedPlanner

MANIFEST = "manifest.jsonl"
CONTACT_SHEET = "contact_sheet.png"
_ROW_KEYS = {"id", "brief", "request", "prompt", "variants", "seeds", "seed", "steps", "guidance", "size", "aspect"}


@dataclass(frozen=True)
class BatchRow:
    id: str
    source: Brief | str  # a brief, or a finished prompt
    variants: int
    seeds: tuple[int, ...] | None
    seed: int | None
    params: dict  # steps, guidance, size: checked by the policy
    aspect: str | None = None


@dataclass(frozen=True)
class BatchItem:
    """One row made ready to run: the compiled prompt and the governed request (its num_images = variants)."""

    id: str
    compiled: CompiledPrompt
    request: GenerationRequest
    seeds: tuple[int, ...]

    def fingerprint(self) -> str:
        """What must not change between a run and its resume for the manifest's images to stay valid."""
        r = self.request
        key = json.dumps([self.compiled.prompt, r.width, r.height, r.steps, r.guidance, r.seed,
                          self.compiled.references], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class BatchReport:
    out_dir: Path
    items: int
    generated: int  # images made by this run
    skipped: int  # images already in the manifest
    plans: int  # planner calls made by this run
    manifest: Path
    contact_sheet: Path | None
    records: list[dict] = field(default_factory=list)  # the manifest, complete
    warnings: dict[str, list[str]] = field(default_factory=dict)  # id -> fit warnings of its prompt


# --- reading -----------------------------------------------------------------------------------------------------
def read_batch(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"batch file {str(path)!r} does not exist")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k.strip(): v for k, v in row.items() if k and v not in (None, "")} for row in csv.DictReader(f)]
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path} line {n}: expected a JSON object")
            rows.append(row)
    else:
        raise InputError(f"batch file {path.name!r} must end in .jsonl or .csv")
    if not rows:
        raise InputError(f"batch file {path} has no rows")
    return rows


def _int(row_name: str, key: str, value) -> int:
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError):
        raise InputError(f"{row_name}: {key}={value!r} must be a whole number") from None


def parse_row(row: dict, n: int, base_dir: Path, planner: PlannerHook) -> BatchRow:
    unknown = sorted(set(row) - _ROW_KEYS)
    name = f"row {n}" + (f" ({row['id']})" if "id" in row else "")
    if unknown:
        raise InputError(f"{name}: unknown columns {unknown}; known: {sorted(_ROW_KEYS)}")
    item_id = str(row.get("id") or f"row-{n}")
    if not all(c.isalnum() or c in "-_." for c in item_id) or item_id.startswith("."):
        raise InputError(f"{name}: id {item_id!r} must be letters, digits, '-', '_' or '.' (it names a folder)")
    given = [k for k in ("brief", "request", "prompt") if row.get(k)]
    if len(given) != 1:
        raise InputError(f"{name}: give exactly one of brief, request or prompt (got {given or 'none'})")
    if "brief" in given:
        brief = row["brief"]
        source = brief_from_dict(brief, base_dir) if isinstance(brief, dict) else load_brief(base_dir / str(brief))
    elif "request" in given:
        source = planner.expand(str(row["request"]))
    else:
        source = str(row["prompt"])
    variants = _int(name, "variants", row.get("variants", 1))
    seeds = row.get("seeds")
    if seeds is not None:
        seeds = seeds.replace(",", " ").split() if isinstance(seeds, str) else seeds
        if not isinstance(seeds, list):
            raise InputError(f"{name}: seeds must be a list of whole numbers")
        seeds = tuple(_int(name, "seeds", s) for s in seeds)
        if len(seeds) != variants:
            raise InputError(f"{name}: {len(seeds)} seeds for {variants} variants; give one seed per variant")
    seed = _int(name, "seed", row["seed"]) if row.get("seed") is not None else None
    params = {k: row[k] for k in ("steps", "guidance", "size") if row.get(k) is not None}
    return BatchRow(id=item_id, source=source, variants=variants, seeds=seeds, seed=seed, params=params,
                    aspect=row.get("aspect"))


def prepare_item(row: BatchRow, limits, policy: ParameterPolicy, brand: BrandKit | None,
                 library: PromptLibrary | None) -> BatchItem:
    """Compile the row's prompt, resolve its size and pass its parameters through the policy."""
    from PIL import Image

    try:
        params = dict(row.params)
        size = parse_size(params.pop("size")) if "size" in params else (None, None)
        if isinstance(row.source, Brief):
            brief = row.source
            if row.aspect is not None or size[0] is not None:  # the row's size replaces the brief's
                brief = replace(brief, aspect=row.aspect, width=size[0], height=size[1])
            compiled = compile_brief(brief, brand, limits=limits, library=library)
        else:
            if brand is not None:
                brand.check_prompt(row.source)
            width, height = resolve_size(limits, width=size[0], height=size[1], aspect=row.aspect)
            texts = extract_glyph_texts(row.source)
            compiled = CompiledPrompt(prompt=row.source, glyph_texts=texts, width=width, height=height,
                                      references=[], warnings=fit_warnings(texts, width, height))
        references = []
        for path in compiled.references:
            with Image.open(path) as im:
                references.append(im.convert("RGB"))
        # A seed derived from the id keeps a rerun's plan identical without the user writing seeds down.
        seed = row.seed if row.seed is not None else zlib.crc32(row.id.encode()) % 2**31
        request = GenerationRequest(prompt=compiled.prompt, references=tuple(references))
        request = policy.apply(request, {**params, "width": compiled.width, "height": compiled.height,
                                         "seed": seed, "num_images": row.variants})
    except InputError as exc:
        raise InputError(f"batch row {row.id!r}: {exc}") from None
    seeds = row.seeds or tuple(request.seed + k for k in range(row.variants))
    return BatchItem(id=row.id, compiled=compiled, request=request, seeds=seeds)


# --- manifest ----------------------------------------------------------------------------------------------------
def read_manifest(out_dir: Path) -> list[dict]:
    path = out_dir / MANIFEST
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption: that image is simply made again
    return records


def _end_cut_line(out_dir: Path) -> None:
    """Close a last line cut short by an interruption, so the next record starts on a line of its own."""
    path = out_dir / MANIFEST
    if path.is_file() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _append(out_dir: Path, record: dict) -> None:
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


# --- running -----------------------------------------------------------------------------------------------------
def run_batch(
    engine,
    batch_file: str | Path,
    out_dir: str | Path,
    *,
    brand: BrandKit | None = None,
    policy: ParameterPolicy | None = None,
    library: PromptLibrary | None = None,
    planner: PlannerHook | None = None,
    progress: bool = True,
    contact_sheet: bool = True,
) -> BatchReport:
    """Run every row of `batch_file` on `engine`: one `engine.plan` per row, one `engine.decode` per variant."""
    # 1. Read and check every row before any work, so a typo in row 40 does not surface an hour in.
    batch_file, out_dir = Path(batch_file), Path(out_dir)
    policy = policy or load_policy()
    planner = planner or RuleBasedPlanner()
    rows = [parse_row(row, n, batch_file.parent, planner) for n, row in enumerate(read_batch(batch_file), 1)]
    ids = [r.id for r in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"batch ids must be unique; repeated: {duplicates}")
    items = [prepare_item(row, engine.limits, policy, brand, library) for row in rows]

    # 2. What the manifest says is done (and still on disk), checked against what the rows now ask for.
    out_dir.mkdir(parents=True, exist_ok=True)
    _end_cut_line(out_dir)
    done: dict[tuple[str, int], dict] = {}
    for record in read_manifest(out_dir):
        if (out_dir / record["path"]).is_file():
            done[(record["id"], record["variant"])] = record
    fingerprints = {item.id: item.fingerprint() for item in items}
    for (item_id, _variant), record in done.items():
        if item_id in fingerprints and record["fingerprint"] != fingerprints[item_id]:
            raise InputError(f"{out_dir} already holds images of {item_id!r} made from a different prompt or "
                             f"parameters; use a new output folder or remove that row's images")

    # 3. Plan once per row, decode each missing variant; record each image as soon as it is on disk.
    total = sum(len(item.seeds) for item in items)
    skipped = sum(1 for item in items for v in range(len(item.seeds)) if (item.id, v) in done)
    generated = plans = 0
    bar = tqdm(total=total, initial=skipped, desc="batch", unit="img", disable=not progress)
    for item in items:
        todo = [v for v in range(len(item.seeds)) if (item.id, v) not in done]
        if not todo:
            continue
        r = item.request
        plan = engine.plan(r.prompt, width=r.width, height=r.height, seed=r.seed,
                           images=list(r.references) or None)
        plans += 1
        (out_dir / item.id).mkdir(exist_ok=True)
        for v in todo:
            result = engine.decode(plan, seed=item.seeds[v], steps=r.steps, guidance=r.guidance, num_images=1)
            rel = f"{item.id}/v{v}.png"
            tmp = out_dir / f"{rel}.tmp"
            result.images[0].save(tmp, format="PNG")
            os.replace(tmp, out_dir / rel)  # a crash mid-write never leaves a truncated PNG under the final name
            record = {"id": item.id, "variant": v, "path": rel, "fingerprint": fingerprints[item.id],
                      "glyph_texts": item.compiled.glyph_texts, "template": item.compiled.template,
                      **{k: val for k, val in result.metadata[0].items() if k != "glyph_texts"}}
            _append(out_dir, record)
            done[(item.id, v)] = record
            generated += 1
            bar.update(1)
    bar.close()

    records = [done[(item.id, v)] for item in items for v in range(len(item.seeds))]
    sheet = write_contact_sheet(out_dir, records) if contact_sheet else None
    warnings = {item.id: [w.message for w in item.compiled.warnings] for item in items if item.compiled.warnings}
    return BatchReport(out_dir=out_dir, items=len(items), generated=generated, skipped=skipped, plans=plans,
                       manifest=out_dir / MANIFEST, contact_sheet=sheet, records=records, warnings=warnings)


def write_contact_sheet(out_dir: Path, records: list[dict], thumb: int = 128) -> Path:
    """One PNG: a row per batch item, its variants side by side, labelled with id and seed."""
    from PIL import Image, ImageDraw, ImageOps

    by_item: dict[str, list[dict]] = {}
    for record in records:
        by_item.setdefault(record["id"], []).append(record)
    cols = max(len(v) for v in by_item.values())
    label_h = 14
    sheet = Image.new("RGB", (cols * thumb, len(by_item) * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (item_id, recs) in enumerate(by_item.items()):
        y = row * (thumb + label_h)
        for col, record in enumerate(sorted(recs, key=lambda r: r["variant"])):
            with Image.open(out_dir / record["path"]) as im:
                im = ImageOps.contain(im.convert("RGB"), (thumb, thumb))  # small models' images scale up
                sheet.paste(im, (col * thumb + (thumb - im.width) // 2, y + label_h + (thumb - im.height) // 2))
            draw.text((col * thumb + 2, y + 1), f"{item_id} v{record['variant']} s{record['seed']}"[:22], fill="black")
    path = out_dir / CONTACT_SHEET
    sheet.save(path)
    return path
