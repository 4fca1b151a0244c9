"""`glmimage` command line: a thin shell over the library. Each sub-command lives in its own module
with a `register(subparsers)` function; the list below is the whole command set."""

from __future__ import annotations

import argparse
import sys

from glmimage.errors import GlmImageError

# Sub-command modules, in the order `--help` shows them. Each exposes register(subparsers).
COMMAND_MODULES = [
    "glmimage.cli.generate_cmd",
    "glmimage.cli.brief_cmd", "glmimage.cli.batch_cmd",
    "glmimage.cli.serve_cmd",
    "glmimage.cli.data_cmd", "glmimage.cli.eval_cmd",
    "glmimage.cli.train_cmd",
    "glmimage.cli.bench_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="glmimage", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _quiet_libraries() -> None:
    """The libraries log deprecation notes meant for their own developers; our errors are what users need."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("transformers", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except GlmImageError as exc:
        print(f"glmimage: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glmimage: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
