"""`glmimage serve` sub-commands that need no server: keys and migrations."""

from sqlalchemy import select

from glmimage.cli.main import main
from glmimage.service.auth import hash_key
from glmimage.service.db import Database
from glmimage.service.tables import ApiKey


def test_create_key_prints_the_secret_and_stores_its_hash(tmp_path, capsys):
    assert main(["serve", "migrate", "--data-dir", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["serve", "create-key", "--data-dir", str(tmp_path), "--name", "ci", "--roles", "generate,review",
                 "--quota", "10", "--rate-limit", "5"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("gik_")
    db = Database(f"sqlite:///{tmp_path / 'glmimage.db'}")
    with db.sessions() as session:
        key = session.scalars(select(ApiKey)).one()
    db.dispose()
    assert key.key_hash == hash_key(secret) and secret not in (key.key_hash, key.prefix)
    assert (key.roles, key.quota_images, key.rate_limit_per_minute) == ("generate,review", 10, 5)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["serve", "create-key", "--data-dir", str(tmp_path), "--name", "x", "--roles", "root"]) == 2
    assert "roles ['root'] are not valid" in capsys.readouterr().err
    assert main(["serve", "migrate", "--database-url", "nope://x"]) == 2
    assert "database URL" in capsys.readouterr().err
    assert main(["serve", "migrate", "--database-url", "postgresql+psycopg://u:secret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "cannot use the database" in err and "secret" not in err


def key_names(database_path):
    db = Database(f"sqlite:///{database_path}")
    try:
        with db.sessions() as session:
            return [k.name for k in session.scalars(select(ApiKey))]
    finally:
        db.dispose()


def test_options_before_the_sub_command_apply(tmp_path, monkeypatch, capsys):
    for name in ("GLMIMAGE_DATA_DIR", "DATABASE_URL", "GLMIMAGE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the default data dir, runs/service, would land here
    before, after = tmp_path / "before", tmp_path / "after"
    assert main(["serve", "--data-dir", str(before), "create-key", "--name", "early"]) == 0
    assert main(["serve", "--data-dir", str(before), "create-key", "--data-dir", str(after), "--name", "late"]) == 0
    assert main(["serve", "--plain-logs", "--data-dir", str(before), "migrate"]) == 0
    capsys.readouterr()
    assert key_names(before / "glmimage.db") == ["early"]
    assert key_names(after / "glmimage.db") == ["late"]  # given after the sub-command: that one wins
    assert not (tmp_path / "runs").exists()  # nothing went to the default database


def test_server_options_before_a_sub_command_are_refused(tmp_path, capsys):
    assert main(["serve", "--port", "9000", "create-key", "--data-dir", str(tmp_path), "--name", "x"]) == 2
    assert "--port apply to `glmimage serve` itself, not to `glmimage serve create-key`" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "migrate", "--data-dir", str(tmp_path)]) == 2
    assert "--host" in capsys.readouterr().err
    assert not (tmp_path / "glmimage.db").exists()
