"""Text the database or UTF-8 cannot hold, on SQLite and on PostgreSQL (`database_url` runs each test on both): a lone
UTF-16 surrogate or a NUL character in a body, a form, the path or the query gets a clear 400, never a 500, and a
NUL in `?q=` is not silently ignored. Then hypothesis fuzzes prompts and searches (surrogates, NUL, control and
combining characters, LIKE wildcards): every prompt that is accepted comes back exactly, and every search answers."""

import json
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.service_helpers import FAST, new_key, png_bytes


@pytest.fixture
def api(make_client, database_url):
    client = make_client(database_url=database_url)
    client.app.state.services.local_worker.pause()  # only the text matters here: queued jobs are enough
    return client


@pytest.fixture
def key(api):
    return new_key(api, ["generate", "review", "admin"], rate_limit_per_minute=100_000)


def unstorable(text: str) -> bool:
    """The oracle: a NUL or a lone surrogate (a pair is one character by the time Python holds it)."""
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def post_json(api, path, body, key):
    """JSON with every non-ASCII character escaped (`\\ud800` stays a lone surrogate, as a client may send it)."""
    return api.post(path, content=json.dumps(body).encode(), headers={**key, "Content-Type": "application/json"})


def check(response, param, *words):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_value" and error["param"] == param, error
    for word in words:
        assert word in error["message"], error["message"]


def nothing_stored(api, key):
    assert api.get("/v1/generations", headers=key).json()["total"] == 0
    assert api.get("/v1/prompts", headers=key).json() == []


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/images/generations"])
def test_lone_surrogates_and_nul_in_a_prompt_are_400(api, key, path):
    check(post_json(api, path, {"prompt": "a \ud800 b", **FAST}, key), "prompt", "surrogate", "U+D800")
    check(post_json(api, path, {"prompt": "tail \udfff", **FAST}, key), "prompt", "U+DFFF")
    check(post_json(api, path, {"prompt": "a \x00 b", **FAST}, key), "prompt", "NUL")
    check(post_json(api, path, {"template": "t", "variables": {"x": "\ud800"}}, key), "variables.x", "surrogate")
    # A surrogate in a field's name: refused too, with an error that can be sent.
    response = post_json(api, path, {"prompt": "x", "\ud800": 1, **FAST}, key)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_value"
    nothing_stored(api, key)
    # A character outside the BMP arrives as a surrogate pair: that is valid, and comes back intact.
    ok = post_json(api, "/v1/jobs", {"prompt": "smile \U0001F600 e\u0301", **FAST}, key)
    assert ok.status_code == 202 and ok.json()["prompt"] == "smile \U0001F600 e\u0301"


def test_bad_text_in_other_bodies_and_forms_is_400(api, key):
    check(post_json(api, "/v1/templates", {"name": "t\x00", "source": "x"}, key), "name", "NUL")
    check(post_json(api, "/v1/templates", {"name": "t", "source": "{{ a }}\ud800"}, key), "source")
    check(post_json(api, "/v1/brand-kits", {"name": "b", "voice": ["ok", "\x00"]}, key), "voice.1", "NUL")
    check(post_json(api, "/v1/keys", {"name": "\ud800", "roles": ["generate"]}, key), "name", "surrogate")
    files = [("image", ("r.png", png_bytes((64, 64)), "image/png"))]
    response = api.post("/v1/jobs/edits", data={"prompt": "make it \x00 red"}, files=files, headers=key)
    check(response, "prompt", "NUL")
    nothing_stored(api, key)


def test_nul_in_the_query_or_path_is_400_not_ignored(api, key):
    assert api.post("/v1/jobs", json={"prompt": "a red fox", **FAST}, headers=key).status_code == 202
    for path in ("/v1/generations?q=%00", "/v1/generations?q=fox%00", "/v1/prompts?q=%00",
                 "/v1/generations?use_case=%00", "/v1/templates?name=a%00b", "/v1/review/queue?use_case=%00"):
        response = api.get(path, headers=key)
        check(response, path.split("?")[1].split("=")[0], "NUL", "%00")
    check(api.get("/v1/jobs/%00", headers=key), "path", "NUL")
    check(api.get("/v1/outputs/1%00", headers=key), "path")
    # `%2500` is the text "%00", not a NUL: an ordinary search that finds nothing.
    assert api.get("/v1/generations?q=%2500", headers=key).json()["total"] == 0
    assert api.get("/v1/generations?q=fox", headers=key).json()["total"] == 1


# -- fuzz ---------------------------------------------------------------------------------------------------------
SPECIAL = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\x01", "\x1f", "\x7f", "\x85", "\u0301", "\u0308",
           "\u20dd", "\u200b", "\u200d", "\ufeff", "\u2028", "\U0001F600", "%", "_", "\\", "'", '"', " ", "\t", "\n",
           "a", "Z", "\u00e9", "\u0130", "\u212a", "\u00df"]
CHARS = st.one_of(st.sampled_from(SPECIAL),
                  st.characters(categories=["Cc", "Cf", "Cs", "Mn", "Me", "Mc", "Zs", "Zl", "Ll", "Lu", "Lo", "So",
                                            "Nd", "Po"]))
# Text around one chosen special character, so that every example meets at least one.
FUZZED_TEXT = st.tuples(st.text(CHARS, max_size=12), st.sampled_from(SPECIAL), st.text(CHARS, max_size=12)).map("".join)
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
STORED = ["Caf\u00e9 au lait", "e\u0301clair", "100% sure_thing", "back\\slash", "tab\there", "smile \U0001F600",
          "zero\u200bwidth", "KELVIN \u212a"]


def test_fuzzed_prompts_are_refused_cleanly_or_stored_exactly(api, key):
    @given(prompt=st.one_of(FUZZED_TEXT, st.text(CHARS, max_size=30)))
    @FUZZ
    def one(prompt):
        response = post_json(api, "/v1/jobs", {"prompt": prompt, **FAST}, key)
        assert response.status_code in (202, 400), (prompt, response.status_code, response.text)
        if unstorable(prompt):
            check(response, "prompt")
        elif not prompt.strip():
            check(response, "prompt", "empty")
        elif response.status_code == 400:
            assert response.json()["error"]["code"] == "content_policy_violation", response.text
        else:
            job = api.get(f"/v1/jobs/{response.json()['id']}", headers=key).json()
            assert job["prompt"] == prompt  # byte for byte, through the database and back

    one()


def test_fuzzed_searches_answer_and_find_what_they_contain(api, key):
    for prompt in STORED:
        assert post_json(api, "/v1/jobs", {"prompt": prompt, **FAST}, key).status_code == 202

    @given(q=st.one_of(FUZZED_TEXT, st.sampled_from(STORED).flatmap(
        lambda p: st.integers(0, len(p)).flatmap(lambda i: st.just(p[i:i + 4])))))
    @FUZZ
    def one(q):
        # A URL carries UTF-8 bytes: a lone surrogate becomes the bytes of its code point, which the server
        # decodes to U+FFFD (as for any invalid UTF-8).
        encoded = quote(q.encode("utf-8", "surrogatepass"), safe="")
        for path in ("/v1/generations", "/v1/prompts"):
            response = api.get(f"{path}?q={encoded}&limit=100", headers=key)
            if "\x00" in q:
                check(response, "q", "NUL")
                continue
            assert response.status_code == 200, (q, response.text)
            body = response.json()
            found = {g["prompt"] for g in body["data"]} if path == "/v1/generations" else {p["text"] for p in body}
            words = unquote(encoded).split()
            for prompt in STORED:
                if all(w in prompt for w in words):
                    assert prompt in found, (q, words, prompt)  # an exact substring is always found
            for prompt in found:
                for word in words:
                    if word.isascii():
                        assert word.lower() in prompt.lower(), (q, word, prompt)

    one()
