"""API keys on SQLite and PostgreSQL: the last admin key cannot be revoked (409), so nobody is locked out."""

import threading

import pytest

from glmimage.service.auth import LastAdminKeyError, create_key, revoke_key
from glmimage.service.db import Database
from tests.service.service_helpers import auth, new_key


def key_id(client, headers):
    return client.get("/v1/me", headers=headers).json()["id"]


def test_the_last_admin_key_cannot_be_revoked(make_client, database_url):
    client = make_client(database_url=database_url)
    first = auth(client.app.state.services.bootstrap_key)
    first_id = key_id(client, first)
    refused = client.delete(f"/v1/keys/{first_id}", headers=first)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "last_admin_key" and "last admin key" in error["message"]
    assert client.get("/v1/me", headers=first).status_code == 200  # still works

    worker = new_key(client, ["generate", "review"])
    assert client.delete(f"/v1/keys/{key_id(client, worker)}", headers=first).status_code == 200  # not an admin
    second = new_key(client, ["admin"])
    assert client.delete(f"/v1/keys/{first_id}", headers=second).status_code == 200  # another admin remains
    assert client.get("/v1/me", headers=first).status_code == 401
    assert client.delete(f"/v1/keys/{key_id(client, second)}", headers=second).status_code == 409
    assert client.delete(f"/v1/keys/{first_id}", headers=second).status_code == 200  # already revoked: unchanged
    keys = client.get("/v1/keys", headers=second).json()
    assert [k["revoked_at"] is None for k in keys] == [False, False, True]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_admins_revoking_each_other_at_once_leave_one(database_url):
    """PostgreSQL: the second revocation waits for the first's lock, then sees it and is refused."""
    db = Database(database_url)
    db.migrate()
    try:
        with db.session() as session:
            a, _ = create_key(session, "a", ["admin"], rate_limit_per_minute=10)
            b, _ = create_key(session, "b", ["admin"], rate_limit_per_minute=10)
            a_id, b_id = a.id, b.id
        outcome = {}
        first = db.sessions()
        revoke_key(first, a_id)  # holds the admin rows' locks until it commits

        def revoke_b():
            with db.sessions() as second:
                try:
                    revoke_key(second, b_id)
                    second.commit()
                    outcome["b"] = "revoked"
                except LastAdminKeyError:
                    outcome["b"] = "refused"

        thread = threading.Thread(target=revoke_b)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # waiting for the lock
        first.commit()
        first.close()
        thread.join(30)
        assert outcome == {"b": "refused"}
    finally:
        db.dispose()
