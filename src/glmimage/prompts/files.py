"""Reading the small YAML/JSON files of this layer: briefs, brand kits."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from glmimage.errors import InputError


def load_mapping(path: Path) -> dict:
    """A YAML or JSON file whose top level is a mapping; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError(f"file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
