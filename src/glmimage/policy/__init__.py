"""Governance shared by the API, the CLI and the service: the request object, the parameter policy, routing."""

from glmimage.policy.parameters import ParameterPolicy, ParameterRule, load_policy, policy_from_dict
from glmimage.policy.request import GenerationRequest
from glmimage.policy.routing import IMAGE_TO_IMAGE, TEXT_TO_IMAGE, dispatch, route, validate_for_mode

__all__ = [
    "IMAGE_TO_IMAGE",
    "TEXT_TO_IMAGE",
    "GenerationRequest",
    "ParameterPolicy",
    "ParameterRule",
    "dispatch",
    "load_policy",
    "policy_from_dict",
    "route",
    "validate_for_mode",
]
