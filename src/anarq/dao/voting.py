"""Ballots and how they are counted: the same code on the node and in an offline tally.

A vote is a JSON document the voter signs with their own key (`anarq.squid.documents`):
whoever holds the proposal's signed snapshot of voting power and its signed votes can
check every signature and count again, with nothing but this module, and must find the
node's result. Counting uses integers only, so every machine finds the same numbers.

Voting types (the `choice` a ballot carries):
- `single`: one choice's index; the voter's power goes to it.
- `approval`: a list of indices; each gets the voter's whole power.
- `weighted`: `{index: parts}`; the power is shared in proportion to the parts.
- `quadratic`: as weighted, with the square root of the power (integer square root).
- `ranked`: indices in order of preference; instant-runoff counting.

A proposal passes when the power that took part reaches the quorum and choice 0 wins:
for `ranked`, it is the instant-runoff winner; otherwise it has the most power of the
choices that are not abstentions and at least the pass threshold of their sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from anarq.squid import documents

VOTE_VERSION = "anarq-vote/v1"
SNAPSHOT_VERSION = "anarq-dao-snapshot/v1"
VotingType = Literal["single", "approval", "weighted", "quadratic", "ranked"]
VOTING_TYPES: tuple[str, ...] = ("single", "approval", "weighted", "quadratic", "ranked")
CHOICES_MAX = 20
PARTS_MAX = 1_000_000
BPS = 10_000


class BallotInvalid(ValueError):
    """A vote or snapshot that is not what it claims; the message says why."""


@dataclass(frozen=True)
class Rules:
    """What a proposal is decided by, fixed when it is made (and in its snapshot)."""

    voting: str
    choices: tuple[str, ...]
    quorum: int  # power that must take part
    pass_bps: int  # share of the non-abstaining power choice 0 needs

    def abstaining(self) -> frozenset[int]:
        return frozenset(i for i, name in enumerate(self.choices) if name.lower() == "abstain")

    def as_json(self) -> dict[str, Any]:
        return {
            "voting": self.voting,
            "choices": list(self.choices),
            "quorum": str(self.quorum),
            "pass_bps": self.pass_bps,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Rules:
        try:
            return cls(
                voting=str(value["voting"]),
                choices=tuple(str(c) for c in value["choices"]),
                quorum=int(value["quorum"]),
                pass_bps=int(value["pass_bps"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BallotInvalid(f"the rules are incomplete: {exc}") from None


@dataclass
class Tally:
    """A count: power per choice (`ranked`: the last round), who took part, the result."""

    totals: list[int]
    turnout: int
    voters: int
    passed: bool
    winner: int | None
    rounds: list[list[int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "totals": [str(t) for t in self.totals],
            "turnout": str(self.turnout),
            "voters": self.voters,
            "passed": self.passed,
            "winner": self.winner,
            "rounds": [[str(t) for t in r] for r in self.rounds],
        }


def check_choice(voting: str, choice: Any, choices: int) -> Any:
    """`choice` in its canonical form for `voting`, or `BallotInvalid` saying what is off."""

    def index(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < choices:
            raise BallotInvalid(f"{value!r} is not a choice (0 to {choices - 1})")
        return value

    if voting == "single":
        return index(choice)
    if voting in ("approval", "ranked"):
        if not isinstance(choice, list) or not choice:
            raise BallotInvalid(f"a {voting} ballot is a non-empty list of choices")
        picked = [index(c) for c in choice]
        if len(set(picked)) != len(picked):
            raise BallotInvalid("a ballot names each choice once")
        return sorted(picked) if voting == "approval" else picked
    if voting in ("weighted", "quadratic"):
        if not isinstance(choice, dict) or not choice:
            raise BallotInvalid(f"a {voting} ballot maps choices to parts, e.g. {{'0': 3}}")
        parts: dict[str, int] = {}
        for key, value in choice.items():
            try:
                at = index(int(key))
            except (TypeError, ValueError):
                raise BallotInvalid(f"{key!r} is not a choice") from None
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= PARTS_MAX:
                raise BallotInvalid(f"parts are whole numbers from 1 to {PARTS_MAX}")
            parts[str(at)] = value
        return dict(sorted(parts.items(), key=lambda item: int(item[0])))
    raise BallotInvalid(f"unknown voting type {voting!r}")


def count(rules: Rules, ballots: Iterable[tuple[int, Any]]) -> Tally:
    """Count (power, choice) ballots under `rules`."""
    n = len(rules.choices)
    totals = [0] * n
    turnout = voters = 0
    ranked: list[tuple[int, list[int]]] = []
    for power, choice in ballots:
        if power <= 0:
            continue
        voters += 1
        turnout += power
        if rules.voting == "single":
            totals[choice] += power
        elif rules.voting == "approval":
            for i in choice:
                totals[i] += power
        elif rules.voting in ("weighted", "quadratic"):
            weight = math.isqrt(power) if rules.voting == "quadratic" else power
            whole = sum(choice.values())
            for key, parts in choice.items():
                totals[int(key)] += weight * parts // whole
        else:
            ranked.append((power, choice))
    if rules.voting == "ranked":
        rounds, winner = _instant_runoff(n, ranked)
        totals = rounds[-1] if rounds else totals
        passed = turnout >= rules.quorum and turnout > 0 and winner == 0
        return Tally(totals, turnout, voters, passed, winner, rounds)
    abstain = rules.abstaining()
    counted = [i for i in range(n) if i not in abstain]
    considered = sum(totals[i] for i in counted)
    best = max((totals[i] for i in counted), default=0)
    leaders = [i for i in counted if totals[i] == best and best > 0]
    winner = leaders[0] if len(leaders) == 1 else None
    passed = (
        turnout >= rules.quorum
        and winner == 0
        and totals[0] * BPS >= rules.pass_bps * considered
        and considered > 0
    )
    return Tally(totals, turnout, voters, passed, winner)


def _instant_runoff(
    n: int, ballots: list[tuple[int, list[int]]]
) -> tuple[list[list[int]], int | None]:
    """Rounds of first preferences among the choices still standing; the choice with the
    least is dropped (of those tied, the highest index) until one has a majority."""
    standing = set(range(n))
    rounds: list[list[int]] = []
    while standing:
        totals = [0] * n
        for power, order in ballots:
            first = next((c for c in order if c in standing), None)
            if first is not None:
                totals[first] += power
        rounds.append(totals)
        active = sum(totals)
        if active == 0:
            return rounds, None
        leader = max(standing, key=lambda c: (totals[c], -c))
        if totals[leader] * 2 > active or len(standing) == 1:
            return rounds, leader
        weakest = min(standing, key=lambda c: (totals[c], -c))
        standing.discard(weakest)
    return rounds, None


# Documents -------------------------------------------------------------------------------


def vote_document(
    *, dao: str, proposal: str, voter: str, choice: Any, issued_at: str
) -> dict[str, Any]:
    """The unsigned vote a voter's client signs (`documents.sign`, issuer = the voter)."""
    return {
        "version": VOTE_VERSION,
        "dao": dao,
        "proposal": proposal,
        "voter": voter,
        "issuer": voter,
        "choice": choice,
        "issued_at": issued_at,
    }


def check_vote(vote: Any, *, dao: str, proposal: str, rules: Rules) -> tuple[str, Any]:
    """(voter, canonical choice) of a signed vote for this proposal; `BallotInvalid` else."""
    if not isinstance(vote, dict) or vote.get("version") != VOTE_VERSION:
        raise BallotInvalid(f"not an {VOTE_VERSION} vote")
    if vote.get("dao") != dao or vote.get("proposal") != proposal:
        raise BallotInvalid("the vote is for another proposal")
    if vote.get("voter") != vote.get("issuer"):
        raise BallotInvalid("a vote is signed by its voter")
    choice = check_choice(rules.voting, vote.get("choice"), len(rules.choices))
    try:
        documents.verify(vote)
    except documents.DocumentInvalid as exc:
        raise BallotInvalid(str(exc)) from None
    return str(vote["voter"]), choice


def check_snapshot(snapshot: Any, *, issuer: str | None = None) -> tuple[Rules, dict[str, int]]:
    """The rules and each voter's power from a node's signed snapshot."""
    if not isinstance(snapshot, dict) or snapshot.get("version") != SNAPSHOT_VERSION:
        raise BallotInvalid(f"not an {SNAPSHOT_VERSION} snapshot")
    if issuer is not None and snapshot.get("issuer") != issuer:
        raise BallotInvalid(f"the snapshot is signed by {snapshot.get('issuer')}, not {issuer}")
    try:
        documents.verify(snapshot)
    except documents.DocumentInvalid as exc:
        raise BallotInvalid(str(exc)) from None
    power = snapshot.get("power")
    if not isinstance(power, dict):
        raise BallotInvalid("the snapshot has no power table")
    try:
        table = {str(did): int(amount) for did, amount in power.items()}
    except (TypeError, ValueError):
        raise BallotInvalid("the snapshot's power is not whole numbers") from None
    return Rules.from_json(snapshot.get("rules", {})), table


def tally_offline(ballots: Mapping[str, Any]) -> tuple[Tally, list[str]]:
    """Re-count a proposal from its exported ballots (a signed snapshot and signed votes),
    checking every signature; the tally and the problems found (refused votes)."""
    snapshot = ballots.get("snapshot")
    rules, power = check_snapshot(snapshot)
    assert isinstance(snapshot, dict)
    dao, proposal = str(snapshot.get("dao")), str(snapshot.get("proposal"))
    problems: list[str] = []
    counted: dict[str, tuple[int, Any]] = {}
    for n, vote in enumerate(ballots.get("votes", [])):
        try:
            voter, choice = check_vote(vote, dao=dao, proposal=proposal, rules=rules)
        except BallotInvalid as exc:
            problems.append(f"vote {n}: {exc}")
            continue
        if voter in counted:
            problems.append(f"vote {n}: {voter} voted already")
            continue
        if voter not in power:
            problems.append(f"vote {n}: {voter} held no power at the snapshot")
            continue
        counted[voter] = (power[voter], choice)
    return count(rules, counted.values()), problems
