"""Resume selections are checked against the waiting view's options."""

from __future__ import annotations

import pytest

from drift_worker.nodes import SelectionError, check_selections

VIEW = {
    "inputOptions": [
        {
            "id": "mode",
            "possibleValues": [{"value": "SOURCE"}, {"value": "WALLET"}],
            "possibleDependentValues": {
                "WALLET": {"id": "wallet", "possibleValues": [{"value": "MAIN"}, {"value": "GIFT"}]}
            },
        },
        {"id": "note"},
    ]
}


def test_values_among_possible_values_pass() -> None:
    """A value listed in possibleValues, and a free-form option without them, are accepted."""
    check_selections(VIEW, {"mode": "SOURCE", "note": "anything"})


def test_value_outside_possible_values_is_refused() -> None:
    """A value not among the option's possibleValues is refused, naming the option."""
    with pytest.raises(SelectionError, match="mode"):
        check_selections(VIEW, {"mode": "CASH"})


def test_unknown_option_is_refused() -> None:
    """Selecting an option the view does not have is refused."""
    with pytest.raises(SelectionError, match="ghost"):
        check_selections(VIEW, {"ghost": 1})


def test_dependent_options_open_with_their_parent_value() -> None:
    """A dependent option is selectable only under the parent value it hangs from, with its own values."""
    check_selections(VIEW, {"mode": "WALLET", "wallet": "GIFT"})
    with pytest.raises(SelectionError):
        check_selections(VIEW, {"mode": "SOURCE", "wallet": "GIFT"})
    with pytest.raises(SelectionError):
        check_selections(VIEW, {"mode": "WALLET", "wallet": "BANK"})


def test_non_string_values_match_as_json() -> None:
    """Boolean and number values open their dependents by their JSON key, and `true` never passes for `1`."""
    view = {
        "inputOptions": [
            {
                "id": "agree",
                "possibleValues": [{"value": True}, {"value": False}],
                "possibleDependentValues": {"true": {"id": "why", "possibleValues": [{"value": 1}, {"value": 2}]}},
            }
        ]
    }
    check_selections(view, {"agree": True, "why": 2})
    with pytest.raises(SelectionError, match="'why' is not an option"):
        check_selections(view, {"agree": False, "why": 2})
    with pytest.raises(SelectionError, match="not a possible value of option 'agree'"):
        check_selections(view, {"agree": 1})
    with pytest.raises(SelectionError, match="not a possible value of option 'why'"):
        check_selections(view, {"agree": True, "why": True})
