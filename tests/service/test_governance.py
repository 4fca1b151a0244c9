import pytest

from glmimage.service.governance import GovernancePolicy
from glmimage.service.qa import CheckResult

PASS = [CheckResult("blank", True, 30.0, ""), CheckResult("text", True, 0.8, "OCR match 0.80")]
FAIL = [CheckResult("blank", False, 0.0, "luminance std 0.00"), CheckResult("text", True, 0.8, "")]


@pytest.fixture(scope="module")
def policy():
    return GovernancePolicy.load(None)


def test_default_use_case_approves_only_clean_outputs(policy):
    assert policy.decide("default", PASS).status == "approved"
    decision = policy.decide("default", FAIL)
    assert decision.status == "needs_review" and decision.reasons[0].startswith("blank:")


def test_use_case_modes(policy):
    assert policy.decide("internal", FAIL).status == "approved"
    marketing = policy.decide("marketing", PASS)  # always, and a stricter OCR threshold (0.9 > 0.8)
    assert marketing.status == "needs_review"
    assert any("text" in r for r in marketing.reasons) and any("reviews every output" in r for r in marketing.reasons)


def test_policy_flags_override_never(policy):
    assert policy.decide("internal", PASS, prompt_flag="docs: 'passport'").status == "needs_review"
    rendered = PASS + [CheckResult("content_policy", False, None, "rendered text: ...")]
    assert policy.decide("internal", rendered).status == "needs_review"


def test_unknown_use_case_and_bad_policy(policy):
    with pytest.raises(KeyError, match="known"):
        policy.decide("nope", PASS)
    with pytest.raises(ValueError, match="default"):
        GovernancePolicy.from_dict({"use_cases": {"x": {"review": "never"}}})
    with pytest.raises(ValueError, match="review"):
        GovernancePolicy.from_dict({"use_cases": {"default": {"review": "sometimes"}}})
