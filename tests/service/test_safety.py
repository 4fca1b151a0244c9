import pytest

from glmimage.service.safety import PolicyCategory, SafetyPolicy


@pytest.fixture(scope="module")
def policy():
    return SafetyPolicy.load(None)


@pytest.mark.parametrize("prompt, category", [
    ("Card mock-up with number 4111 1111 1111 1111", "personal_data"),
    ("Slide showing password: hunter2", "credentials"),
    ("NSFW poster", "sexual_content"),
    ("ｎｕｄｅ figure", "sexual_content"),  # full-width letters normalise
])
def test_default_policy_blocks_with_category_and_match(policy, prompt, category):
    verdict = policy.check(prompt)
    assert verdict.action == "block" and verdict.category == category
    assert category in verdict.reason and "not allowed" in verdict.reason


def test_review_category_and_clean_prompts(policy):
    assert policy.check('A mock passport page titled "DEMO"').action == "review"
    for prompt in ('A poster titled "SALE"', "A classic class photo", "assassin's creed style lettering"):
        assert policy.check(prompt).action == "allow", prompt


def test_block_outranks_review_and_lists_shorthand():
    policy = SafetyPolicy.from_dict({
        "categories": [{"name": "docs", "action": "review", "terms": ["passport"]}],
        "blocked_terms": ["forbidden thing"], "blocked_patterns": [r"\bcode-\d{3}\b"],
    })
    assert policy.check("passport").action == "review"
    verdict = policy.check("a passport with a Forbidden   Thing")
    assert (verdict.action, verdict.category, verdict.matched) == ("block", "blocklist", "forbidden thing")
    assert policy.check("label CODE-123").matched == "code-123"


@pytest.mark.parametrize("data, message", [
    ({"categories": [{"name": "x", "action": "delete", "terms": ["a"]}]}, "action"),
    ({"categories": [{"name": "x", "patterns": ["("]}]}, "bad pattern"),
    ({"categories": [{"name": "x"}]}, "neither terms nor patterns"),
    ({"rules": []}, "unknown safety policy keys"),
])
def test_bad_policies_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        SafetyPolicy.from_dict(data)


def test_duplicate_categories_refused():
    with pytest.raises(ValueError, match="duplicate"):
        SafetyPolicy((PolicyCategory("a", terms=("x",)), PolicyCategory("a", terms=("y",))))
