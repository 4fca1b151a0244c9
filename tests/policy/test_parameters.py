
import pytest

from glmimage.errors import InputError
from glmimage.policy import GenerationRequest, ParameterPolicy, load_policy, policy_from_dict
from glmimage.policy.parameters import DEFAULT_POLICY_PATH, POLICY_ENV, SEED_MAX

STRICT = {
    "name": "strict",
    "parameters": {
        "steps": {"settable": False, "default": 30},
        "guidance": {"settable": True, "min": 1.0, "max": 3.0, "default": 1.5},
        "size": {"settable": True, "min": 256, "max": 1024, "default": 512},
        "seed": {"settable": True, "min": 0, "max": 1000},
        "num_images": {"settable": True, "min": 1, "max": 2, "default": 1},
    },
}


@pytest.fixture
def strict() -> ParameterPolicy:
    return policy_from_dict(STRICT)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt='a sign "OPEN"', **kw)


def test_defaults_fill_what_the_user_leaves_out(strict):
    out = strict.apply(req(), {})
    assert (out.steps, out.guidance, out.width, out.height, out.num_images) == (30, 1.5, 512, 512, 1)
    assert 0 <= out.seed <= SEED_MAX and out.prompt == 'a sign "OPEN"'
    # Values the caller already set (e.g. from a brief) are kept; None user values mean "not given".
    out = strict.apply(req(width=768, height=256, seed=7), {"guidance": None, "seed": None})
    assert (out.width, out.height, out.seed) == (768, 256, 7)


def test_user_values_within_bounds_are_applied(strict):
    out = strict.apply(req(), {"guidance": 2.5, "size": "768x256", "seed": 42, "num_images": 2})
    assert (out.guidance, out.width, out.height, out.seed, out.num_images) == (2.5, 768, 256, 42, 2)
    assert strict.apply(req(), {"width": "1024", "height": 1024.0}).width == 1024  # CSV and JSON spellings


@pytest.mark.parametrize("params, message", [
    ({"steps": 10}, r"steps may not be set under policy 'strict' \(fixed at 30\); "
                    r"users may set \['width', 'height', 'guidance', 'seed', 'num_images'\]"),
    ({"guidance": 7.5}, r"guidance=7.5 is out of bounds: policy 'strict' allows \[1, 3\]"),
    ({"size": "2048x2048"}, r"width=2048 is out of bounds: policy 'strict' allows \[256, 1024\]"),
    ({"width": 512, "height": 128}, r"height=128 is out of bounds"),
    ({"seed": -1}, r"seed=-1 is out of bounds: policy 'strict' allows \[0, 1000\]"),
    ({"num_images": 3}, r"num_images=3 is out of bounds: policy 'strict' allows \[1, 2\]"),
    ({"num_images": 1.5}, r"num_images=1.5 must be a whole number"),
    ({"guidance": "high"}, r"guidance='high' is not a number"),
    ({"guidance": True}, r"guidance=True is not a number"),
    ({"scheduler": "ddim"}, r"unknown parameter 'scheduler'; users may set"),
    ({"width": 512}, r"give both width and height"),
    ({"size": "big"}, r"size='big' must look like '768x512'"),
    ({"size": "512x512", "width": 512}, r"either size or width/height"),
])
def test_policy_errors_name_parameter_value_and_bounds(strict, params, message):
    with pytest.raises(InputError, match=message):
        strict.apply(req(), params)


def test_policy_file_validation():
    with pytest.raises(InputError, match=r"no rule for \['num_images'\]"):
        policy_from_dict({"parameters": {k: v for k, v in STRICT["parameters"].items() if k != "num_images"}})
    with pytest.raises(InputError, match="unknown parameter 'cfg'"):
        policy_from_dict({"parameters": {**STRICT["parameters"], "cfg": {}}})
    with pytest.raises(InputError, match=r"unknown keys \['maximum'\]"):
        policy_from_dict({"parameters": {**STRICT["parameters"], "steps": {"maximum": 3}}})
    with pytest.raises(InputError, match="default 9 outside"):
        policy_from_dict({"parameters": {**STRICT["parameters"], "num_images": {"min": 1, "max": 4, "default": 9}}})
    with pytest.raises(InputError, match="min 5 > max 1"):
        policy_from_dict({"parameters": {**STRICT["parameters"], "steps": {"min": 5, "max": 1}}})


def test_shipped_default_and_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    default = load_policy()
    assert default.name == "default" and set(default.settable) == {"width", "height", "steps", "guidance", "seed",
                                                                   "num_images"}
    out = default.apply(req(), {})
    assert out.steps is None and out.width is None and out.guidance == 1.5 and out.num_images == 1  # model defaults
    with pytest.raises(InputError, match=r"steps=500 is out of bounds: policy 'default' allows \[1, 50\]"):
        default.apply(req(), {"steps": 500})
    path = tmp_path / "team.yaml"
    import yaml

    path.write_text(yaml.safe_dump(STRICT))
    monkeypatch.setenv(POLICY_ENV, str(path))
    assert load_policy().name == "strict" and load_policy(DEFAULT_POLICY_PATH).name == "default"
    with pytest.raises(InputError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("parameters: [")
    with pytest.raises(InputError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yaml")


def test_describe_is_plain_data(strict):
    d = strict.describe()
    assert d["parameters"]["steps"] == {"settable": False, "min": None, "max": None, "default": 30}
    assert d["parameters"]["width"]["max"] == 1024
