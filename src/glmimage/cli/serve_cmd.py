"""`glmimage serve`: the HTTP service (API + web UI), its RQ workers, keys and migrations.

    glmimage serve                          # API + web UI + in-process worker on http://127.0.0.1:8000
    glmimage serve create-key --name ci --roles generate
    GLMIMAGE_QUEUE=rq glmimage serve worker # one more worker, on this machine or another

Every option also reads from the environment (GLMIMAGE_*, DATABASE_URL, REDIS_URL; see docs/service.md);
options given here win.
"""

from __future__ import annotations

import argparse


def _settings(args):
    from glmimage.service.settings import Settings

    if getattr(args, "serve_action", None):
        # --host and --port belong to the API server: given before a sub-command they would silently do nothing.
        stray = [f"--{name}" for name in ("host", "port") if getattr(args, name, None) is not None]
        if stray:
            from glmimage.errors import InputError

            raise InputError(f"{' and '.join(stray)} apply to `glmimage serve` itself, not to "
                             f"`glmimage serve {args.serve_action}`")

    try:
        return Settings.from_env(model=args.model, database_url=args.database_url, queue=args.queue,
                                 redis_url=args.redis_url, data_dir=args.data_dir, device=args.device)
    except ValueError as exc:
        from glmimage.errors import InputError

        raise InputError(str(exc)) from None


def _common_options(parser: argparse.ArgumentParser, default=None) -> argparse.ArgumentParser:
    """The options `serve` and each of its sub-commands take. A sub-command's copy defaults to SUPPRESS, so an
    option given before the sub-command (`serve --data-dir X create-key`) is kept, not reset to its default; one
    given after it wins."""
    suppress = default is argparse.SUPPRESS
    parser.add_argument("--model", default=default,
                        help="preset or model directory (default: GLMIMAGE_MODEL or the engine default)")
    parser.add_argument("--device", default=default, help="cpu, cuda, cuda:1, ... (default: GLMIMAGE_DEVICE or auto)")
    parser.add_argument("--database-url", default=default,
                        help="SQLAlchemy URL (default: DATABASE_URL or a SQLite file in the data dir)")
    parser.add_argument("--queue", default=default, choices=["local", "rq"],
                        help="local: worker thread in this process (default); rq: workers started with "
                             "`glmimage serve worker`")
    parser.add_argument("--redis-url", default=default,
                        help="Redis for --queue rq (default: REDIS_URL or redis://127.0.0.1:6379/0)")
    parser.add_argument("--data-dir", default=default,
                        help="where the default SQLite database lives (default: runs/service)")
    parser.add_argument("--log-level", default=argparse.SUPPRESS if suppress else "INFO")
    parser.add_argument("--plain-logs", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="human-readable log lines instead of JSON")
    return parser


def register(subparsers) -> None:
    common = _common_options(argparse.ArgumentParser(add_help=False))
    sub_common = _common_options(argparse.ArgumentParser(add_help=False), default=argparse.SUPPRESS)
    serve = subparsers.add_parser("serve", parents=[common], description=__doc__,
                                  help="run the HTTP service (OpenAI-compatible API, jobs, web UI)",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    serve.set_defaults(func=run_serve)

    actions = serve.add_subparsers(dest="serve_action", metavar="{worker,create-key,migrate}")
    worker = actions.add_parser("worker", parents=[sub_common], help="take jobs from the RQ queue (GLMIMAGE_QUEUE=rq)")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--name", help="worker name (default: host:pid:rq)")
    worker.add_argument("--metrics-port", type=int, help="serve this worker's Prometheus metrics on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1",
                        help="address the metrics port listens on (default: 127.0.0.1, this machine only; 0.0.0.0 "
                             "for a Prometheus elsewhere)")
    worker.set_defaults(func=run_worker)

    key = actions.add_parser("create-key", parents=[sub_common], help="create an API key and print it (shown once)")
    key.add_argument("--name", required=True)
    key.add_argument("--roles", default="generate", help="comma-separated: generate, review, admin")
    key.add_argument("--rate-limit", type=int,
                     help="requests per minute (default: GLMIMAGE_DEFAULT_RATE_LIMIT_PER_MINUTE)")
    key.add_argument("--quota", type=int, help="images this key may generate in all (default: unlimited)")
    key.set_defaults(func=run_create_key)

    migrate = actions.add_parser("migrate", parents=[sub_common], help="bring the database schema up to date")
    migrate.set_defaults(func=run_migrate)


def run_serve(args) -> int:
    from glmimage.service.app import create_app, serve
    from glmimage.service.jsonlog import configure_logging

    settings = _settings(args)
    configure_logging(json_logs=settings.log_json and not args.plain_logs, level=args.log_level.upper())
    serve(create_app(settings), host=args.host or "127.0.0.1", port=args.port or 8000)
    return 0


def run_worker(args) -> int:
    from glmimage.service.jsonlog import configure_logging
    from glmimage.service.rq_queue import run_worker as work

    settings = _settings(args)
    configure_logging(json_logs=settings.log_json and not args.plain_logs, level=args.log_level.upper())
    work(settings, burst=args.burst, name=args.name, metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    return 0


def _database(settings):
    """The database, migrated; unreachable servers become one clear line instead of a traceback."""
    from sqlalchemy.exc import OperationalError

    from glmimage.errors import InputError
    from glmimage.service.db import Database, safe_url

    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
    except OperationalError as exc:
        db.dispose()
        raise InputError(f"cannot use the database at {safe_url(db.url)}: {str(exc.orig).strip()}") from None
    return db


def run_create_key(args) -> int:
    import sys

    from glmimage.errors import InputError
    from glmimage.service.auth import create_key

    settings = _settings(args)
    db = _database(settings)
    try:
        with db.session() as session:
            key, secret = create_key(
                session, args.name, args.roles,
                rate_limit_per_minute=args.rate_limit or settings.default_rate_limit_per_minute,
                quota_images=args.quota if args.quota is not None else settings.default_quota_images)
            roles = key.roles
    except ValueError as exc:
        raise InputError(str(exc)) from None
    finally:
        db.dispose()
    print(secret)
    print(f"key {args.name!r} with roles {roles}; shown once, stored hashed", file=sys.stderr)
    return 0


def run_migrate(args) -> int:
    _database(_settings(args)).dispose()
    print("database schema is up to date")
    return 0
