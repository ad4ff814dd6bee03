"""Feature-stage fixtures: generated silver and the feature sets built over it."""

from __future__ import annotations

import pytest

from rayapp.features.definitions import FeatureSet, make_feature_set
from tests.features import factories as F


@pytest.fixture(scope="module")
def core() -> FeatureSet:
    return make_feature_set("core", sentiment_model_id=F.MODEL_ID)


@pytest.fixture(scope="module")
def extended() -> FeatureSet:
    return make_feature_set("extended", sentiment_model_id=F.MODEL_ID)


@pytest.fixture(scope="module")
def silver() -> F.Silver:
    return F.silver(2000)
