"""Counting ballots: every voting type, thresholds and quorum, instant runoff, and checks
of ballots — pure functions, the same on the node and offline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anarq.dao import voting
from anarq.dao.voting import BallotInvalid, Rules, check_choice, count

FOR_AGAINST = ("For", "Against", "Abstain")


def rules(
    voting_type: str = "single", quorum: int = 0, pass_bps: int = 5000, **kw: object
) -> Rules:
    choices = kw.get("choices", FOR_AGAINST)
    assert isinstance(choices, tuple)
    return Rules(voting_type, choices, quorum, pass_bps)


def test_single_choice_passes_with_the_most_and_the_threshold() -> None:
    tally = count(rules(), [(60, 0), (30, 1), (50, 2)])
    assert tally.totals == [60, 30, 50] and tally.turnout == 140 and tally.voters == 3
    assert tally.passed and tally.winner == 0  # abstentions count for quorum, not threshold


def test_a_tie_or_a_short_threshold_does_not_pass() -> None:
    assert not count(rules(), [(10, 0), (10, 1)]).passed
    assert not count(rules(pass_bps=6700), [(65, 0), (35, 1)]).passed
    assert count(rules(pass_bps=6500), [(65, 0), (35, 1)]).passed


def test_quorum_counts_everyone_who_took_part() -> None:
    assert not count(rules(quorum=100), [(60, 0), (30, 2)]).passed
    assert count(rules(quorum=90), [(60, 0), (30, 2)]).passed


def test_approval_gives_each_approved_choice_the_whole_power() -> None:
    tally = count(rules("approval"), [(10, [0, 1]), (5, [0])])
    assert tally.totals == [15, 10, 0] and tally.passed


def test_weighted_shares_power_in_proportion() -> None:
    tally = count(rules("weighted"), [(100, {"0": 3, "1": 1}), (10, {"1": 1})])
    assert tally.totals == [75, 35, 0]


def test_quadratic_counts_the_square_root_of_power() -> None:
    tally = count(rules("quadratic"), [(100, {"0": 1}), (9, {"1": 1}), (16, {"1": 1})])
    assert tally.totals == [10, 7, 0] and tally.passed  # a whale is no longer a crowd


def test_ranked_choice_runs_off_until_a_majority() -> None:
    choices = ("Ada", "Bo", "Cy")
    ballots = [(4, [1, 0]), (3, [2, 0]), (5, [0, 1])]
    tally = count(rules("ranked", choices=choices), ballots)
    # Round 1: Ada 5, Bo 4, Cy 3 (no majority of 12); Cy is out and goes to Ada: 8 to 4.
    assert tally.rounds == [[5, 4, 3], [8, 4, 0]]
    assert tally.winner == 0 and tally.passed


def test_ranked_elimination_breaks_ties_toward_the_higher_index() -> None:
    tally = count(rules("ranked", choices=("A", "B", "C")), [(2, [0]), (2, [1]), (2, [2])])
    assert tally.rounds[1] == [2, 2, 0] and tally.winner == 0


@pytest.mark.parametrize(
    ("voting_type", "choice"),
    [
        ("single", 3),
        ("single", True),
        ("single", "0"),
        ("approval", []),
        ("approval", [0, 0]),
        ("ranked", [5]),
        ("weighted", {"0": 0}),
        ("weighted", {"x": 1}),
        ("quadratic", [0]),
        ("plurality", 0),
    ],
)
def test_malformed_choices_are_refused(voting_type: str, choice: object) -> None:
    with pytest.raises(BallotInvalid):
        check_choice(voting_type, choice, 3)


@given(
    ballots=st.lists(
        st.tuples(st.integers(1, 10**12), st.permutations([0, 1, 2, 3]).map(list)), max_size=40
    )
)
def test_instant_runoff_always_ends_with_a_winner_holding_every_live_ballot(
    ballots: list[tuple[int, list[int]]],
) -> None:
    tally = count(rules("ranked", choices=("A", "B", "C", "D")), ballots)
    if not ballots:
        assert tally.winner is None
        return
    assert sum(tally.rounds[0]) == sum(power for power, _ in ballots)
    final = tally.rounds[-1]
    assert (tally.winner is not None and final[tally.winner] * 2 > sum(final)) or (
        sum(1 for t in final if t) == 1
    )


def test_vote_documents_are_checked_for_their_proposal_and_signature() -> None:
    from anarq.qlock import SigningKey
    from anarq.squid import documents
    from anarq.squid.didkey import did_from_ed25519

    key = SigningKey.generate(hybrid=True)
    voter = did_from_ed25519(key.verify_key.ed25519_bytes())
    unsigned = voting.vote_document(
        dao="did:key:zDao", proposal="P1", voter=voter, choice=0, issued_at="2026-12-04T00:00:00Z"
    )
    signed = documents.sign(unsigned, key)
    assert voting.check_vote(signed, dao="did:key:zDao", proposal="P1", rules=rules()) == (
        voter,
        0,
    )
    with pytest.raises(BallotInvalid, match="another proposal"):
        voting.check_vote(signed, dao="did:key:zDao", proposal="P2", rules=rules())
    with pytest.raises(BallotInvalid, match="signature"):
        voting.check_vote({**signed, "choice": 1}, dao="did:key:zDao", proposal="P1", rules=rules())
    with pytest.raises(BallotInvalid, match="not an"):
        voting.check_vote(unsigned | {"version": "x"}, dao="d", proposal="P1", rules=rules())
