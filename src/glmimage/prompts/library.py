"""A versioned prompt library. `PromptLibrary` is the interface (a database can implement it later);
`FilePromptLibrary` keeps one YAML file per version: <root>/<name>/v<version>.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import yaml

from glmimage.errors import InputError
from glmimage.prompts.templates import PromptTemplate

_VERSION_FILE = re.compile(r"v(\d+)\.ya?ml")


class PromptLibrary(Protocol):
    def names(self) -> list[str]: ...

    def versions(self, name: str) -> list[int]: ...

    def get(self, name: str, version: int | None = None) -> PromptTemplate:
        """The given version, or the latest when version is None."""
        ...

    def add(self, name: str, source: str, description: str = "", defaults: dict | None = None) -> PromptTemplate:
        """Store `source` as the next version of `name` and return it."""
        ...


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'poster@2' -> ('poster', 2); 'poster' -> ('poster', None) (latest)."""
    name, sep, version = ref.partition("@")
    if not sep:
        return name, None
    if not version.isdigit():
        raise InputError(f"template reference {ref!r} must look like 'name' or 'name@3'")
    return name, int(version)


class FilePromptLibrary:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_FILE.fullmatch(p.name)))

    def get(self, name: str, version: int | None = None) -> PromptTemplate:
        versions = self.versions(name)
        if not versions:
            raise InputError(f"no template {name!r} in {self.root}; available: {self.names()}")
        if version is None:
            version = versions[-1]
        if version not in versions:
            raise InputError(f"template {name!r} has no version {version}; versions: {versions}")
        path = self.root / name / f"v{version}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or "template" not in data:
            raise InputError(f"{path}: expected a mapping with a 'template' key")
        return PromptTemplate(name=name, version=version, source=data["template"],
                              description=data.get("description", ""), defaults=data.get("defaults") or {})

    def add(self, name: str, source: str, description: str = "", defaults: dict | None = None) -> PromptTemplate:
        existing = self.versions(name)
        version = existing[-1] + 1 if existing else 1
        template = PromptTemplate(name=name, version=version, source=source, description=description,
                                  defaults=defaults or {})  # validates name and syntax before writing
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        body = {"name": name, "version": version, "description": description, "defaults": defaults or {},
                "template": source}
        # "x" mode: a version, once written, is never overwritten (two writers racing get an error, not a mix).
        with open(folder / f"v{version}.yaml", "x", encoding="utf-8") as f:
            yaml.safe_dump(body, f, sort_keys=False, allow_unicode=True)
        return template

    def resolve(self, ref: str) -> PromptTemplate:
        return self.get(*parse_ref(ref))
