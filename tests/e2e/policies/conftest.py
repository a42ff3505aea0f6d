"""Fixtures of the policy tests (issue 17): a pack of their own and a record directory whose gates
are all opened at teardown, so that no gated action outlives a failing test."""
from __future__ import annotations

import pytest

from policy_util import GATED, Recorder


@pytest.fixture
def rec(tmp_path):
    r = Recorder(tmp_path / "records")
    yield r
    r.open_all()


@pytest.fixture
def pack(api) -> str:
    return api.create_pack()["ref"]


@pytest.fixture
def gated(api, pack) -> str:
    """A gated recording action (policy_util.GATED) in the test's pack; 90 s timeout as a safety net."""
    ref = f"{pack}.gated"
    api.create_action(ref, GATED, timeout_seconds=90)
    return ref
