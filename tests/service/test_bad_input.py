"""Bad input gets a 4xx with a clear JSON error, never a 500, and leaves nothing behind."""

import pytest

from tests.service.service_helpers import FAST, auth, new_key, png_bytes

LIMITS = {"max_upload_bytes": 40_000, "max_request_bytes": 120_000, "max_image_pixels": 200 * 200}


@pytest.fixture
def api(make_client):
    return make_client(**LIMITS)


@pytest.fixture
def key(api):
    return new_key(api, ["generate", "review"], quota_images=3)


def edit(api, key, files, **data):
    return api.post("/v1/images/edits", data={"prompt": "make it red", **data}, files=files, headers=key)


def check(response, status, code, *words):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    for word in words:
        assert word in error["message"], error["message"]


def registry_is_empty(api, key):
    assert api.get("/v1/generations", headers=key).json()["total"] == 0
    assert api.get("/v1/me", headers=key).json()["images_used"] == 0


def test_bad_uploads(api, key):
    big = png_bytes((120, 120))  # noise PNGs barely compress: ~43 kB
    assert len(big) > LIMITS["max_upload_bytes"]
    check(edit(api, key, [("image", ("big.png", big, "image/png"))]), 413, "file_too_large", "40000")
    check(edit(api, key, [("image", ("a.txt", b"hello, not an image", "text/plain"))]), 400, "invalid_image",
          "image[0]", "PNG")
    truncated = png_bytes((64, 64))[:2000]
    check(edit(api, key, [("image", ("t.png", truncated, "image/png"))]), 400, "invalid_image")
    check(edit(api, key, [("image", ("g.gif", png_bytes((32, 32), fmt="GIF"), "image/gif"))]), 400,
          "unsupported_image_format", "GIF")
    import io

    from PIL import Image
    huge = io.BytesIO()
    Image.new("RGB", (400, 400), "white").save(huge, format="PNG")  # small file, too many pixels
    check(edit(api, key, [("image", ("h.png", huge.getvalue(), "image/png"))]), 413, "image_too_large", "400x400")
    five = [("image", (f"{i}.png", png_bytes((32, 32), i), "image/png")) for i in range(5)]
    check(edit(api, key, five), 400, "too_many_images", "1 to 4")
    check(api.post("/v1/images/edits", data={"prompt": "x"}, headers=key), 400, "missing_image")
    with_mask = [("image", ("a.png", png_bytes(), "image/png")), ("mask", ("m.png", png_bytes(), "image/png"))]
    check(edit(api, key, with_mask), 400, "invalid_mask", "no alpha channel")  # masks: test_openai_compat.py
    body = [("image", (f"{i}.png", png_bytes((100, 100), i), "image/png")) for i in range(4)]  # ~120 kB in all
    check(edit(api, key, body), 413, "request_too_large", "120000")
    registry_is_empty(api, key)


@pytest.mark.parametrize("payload, code, words", [
    ({"prompt": "x", "size": "65x64"}, "invalid_size", ["multiple of 32"]),
    ({"prompt": "x", "size": "64x4096"}, "invalid_size", ["[64, 512]"]),
    ({"prompt": "x", "size": "big"}, "invalid_size", ["'WxH'", "poster"]),
    ({"prompt": "x" * 2001}, "prompt_too_long", ["2001", "2000"]),
    ({"prompt": "   "}, "invalid_value", ["empty"]),
    ({}, "invalid_value", ["prompt or a template"]),
    ({"prompt": "x", "n": 0}, "invalid_value", ["n"]),
    ({"prompt": "x", "n": 9}, "parameter_not_allowed", ["num_images=9"]),
    ({"prompt": "x", "steps": 500}, "parameter_not_allowed", ["steps=500"]),
    ({"prompt": "x", "seed": -1}, "invalid_value", ["seed"]),
    ({"prompt": "x", "n": True}, "invalid_value", ["n:", "not true or false"]),
    ({"prompt": "x", "steps": True}, "invalid_value", ["steps", "not true or false"]),
    ({"prompt": "x", "seed": False}, "invalid_value", ["seed", "not true or false"]),
    ({"prompt": "x", "guidance": True}, "invalid_value", ["guidance", "not true or false"]),
    ({"prompt": "x", "keep": 1}, "invalid_value", ["keep", "boolean"]),
    ({"prompt": "x", "n": 0}, "invalid_value", ["n", "greater than or equal to 1"]),
    ({"prompt": "x", "colour": "red"}, "invalid_value", ["colour"]),
    ({"prompt": "x", "model": "dall-e-3"}, "model_not_found", ["dall-e-3", "tiny"]),
    ({"prompt": "x", "use_case": "print"}, "invalid_value", ["print", "marketing"]),
    ({"prompt": "x", "response_format": "jpeg"}, "invalid_value", ["response_format"]),
    ({"prompt": "my card 4111 1111 1111 1111"}, "content_policy_violation", ["personal_data"]),
    ({"prompt": "x", "template": "nope"}, "invalid_value", ["not both"]),
    ({"template": "nope"}, "unknown_template", ["nope"]),
    ({"prompt": "x", "brand_kit": "nope"}, "unknown_brand_kit", ["nope"]),
])
def test_bad_parameters(api, key, payload, code, words):
    for path in ("/v1/images/generations", "/v1/jobs"):
        check(api.post(path, json={**FAST, **payload}, headers=key), 400, code, *words)
    registry_is_empty(api, key)


def test_malformed_bodies(api, key):
    r = api.post("/v1/jobs", content=b"{not json", headers={**key, "Content-Type": "application/json"})
    check(r, 400, "invalid_value")
    r = api.post("/v1/jobs", content=b"[1, 2]", headers={**key, "Content-Type": "application/json"})
    check(r, 400, "invalid_value")
    check(api.get("/v1/generations", params={"limit": 10_000}, headers=key), 400, "invalid_value", "limit")
    check(api.get("/v1/assets/not-a-hash"), 400, "invalid_value")
    check(api.delete("/v1/jobs", headers=key), 405, "method_not_allowed")
    registry_is_empty(api, key)


def test_keys_quota_and_rate_limit(api, key):
    check(api.post("/v1/jobs", json={"prompt": "x", **FAST}), 401, "missing_api_key")
    check(api.post("/v1/jobs", json={"prompt": "x", **FAST}, headers=auth("gik_unknown")), 401, "invalid_api_key")
    ok = api.post("/v1/images/generations", json={"prompt": "x", "n": 2, **FAST}, headers=key)
    assert ok.status_code == 200
    check(api.post("/v1/jobs", json={"prompt": "x", "n": 2, **FAST}, headers=key), 429, "insufficient_quota",
          "2 of 3", "needs 2")
    assert api.get("/v1/me", headers=key).json()["images_used"] == 2  # the refused request counted nothing
    assert api.get("/v1/generations", headers=key).json()["total"] == 1

    slow = new_key(api, ["generate"], rate_limit_per_minute=2)
    for _ in range(2):
        assert api.post("/v1/jobs", json={"prompt": "y", **FAST}, headers=slow).status_code == 202
    limited = api.post("/v1/jobs", json={"prompt": "y", **FAST}, headers=slow)
    check(limited, 429, "rate_limit_exceeded", "2 requests per minute")
    assert int(limited.headers["Retry-After"]) >= 1


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels of greyscale and holds a few bytes: how decompression bombs look."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_references_the_engine_would_refuse_are_refused_at_submission(api, key):
    wide = png_bytes((180, 40))  # within the size limits, but an aspect ratio of 4.5 (the engine takes up to 4)
    for path in ("/v1/images/edits", "/v1/jobs/edits"):
        check(api.post(path, data={"prompt": "x"}, files=[("image", ("w.png", wide, "image/png"))], headers=key),
              400, "invalid_image", "image[0]", "aspect ratio 4.5")
    tiny = png_bytes((12, 40))
    check(edit(api, key, [("image", ("t.png", tiny, "image/png"))]), 400, "invalid_image", "12x40", "too small")
    second = [("image", ("ok.png", png_bytes((64, 64)), "image/png")), ("image", ("w.png", wide, "image/png"))]
    check(edit(api, key, second), 400, "invalid_image", "image[1]")
    registry_is_empty(api, key)
    with api.app.state.services.db.sessions() as session:
        from glmimage.service.tables import Asset

        assert session.query(Asset).count() == 0  # nothing stored


def test_decompression_bombs_are_413(api, key):
    bomb = png_header_only(30_000, 30_000)  # 900 megapixels declared in under 100 bytes
    assert len(bomb) < 200
    check(edit(api, key, [("image", ("bomb.png", bomb, "image/png"))]), 413, "image_too_large", "decompression bomb")
    registry_is_empty(api, key)


def test_true_and_false_are_not_numbers_in_other_bodies(api):
    admin = auth(api.app.state.services.bootstrap_key)
    check(api.post("/v1/keys", json={"name": "k", "roles": ["generate"], "quota_images": True}, headers=admin), 400,
          "invalid_value", "quota_images")
    check(api.post("/v1/brand-kits", json={"name": "b", "max_palette_distance": True}, headers=admin), 400,
          "invalid_value", "max_palette_distance")
    check(api.post("/v1/generations/x/rerun", json={"n": True}, headers=admin), 400, "invalid_value", "n")
    check(api.post("/v1/outputs/1/edits", json={"prompt": "x", "seed": True}, headers=admin), 400, "invalid_value",
          "seed")
