"""The gaming-leaderboard example schema against DynamoDB Local: number sort keys,
GSIs over numbers, a Scan without parameters, a GetItem that also checks a non-key
field, and an UpdateItem whose parameters are all key parameters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import ParameterError, Repositories
from migration.dynamodb.schema import apply

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "gaming_leaderboard_schema.json"


@pytest.fixture(scope="module")
def repos(module_ddb: DynamoDB) -> Repositories:
    contract = load_contract(SCHEMA)
    apply(contract, module_ddb)
    repos = Repositories(contract, module_ddb)
    games = repos["Game"]
    games.put({"game_id": "g1", "title": "Tetris", "genre": "puzzle", "release_date": "1984-06-06",
               "publisher": "ELORG", "max_players": 2, "is_active": True, "verification_code": "s3cret"})
    games.put({"game_id": "g2", "title": "Pong", "genre": "arcade", "release_date": "1972-11-29",
               "publisher": "Atari", "is_active": False})
    for game, score, player in [("g1", 900, "p1"), ("g1", 12000, "p2"), ("g1", 4500, "p3"),
                                ("g1", 80, "p1"), ("g2", 7, "p1")]:
        repos["LeaderboardEntry"].run("submit_score", entry={
            "game_id": game, "score": score, "player_id": player, "player_name": player.upper(),
            "achieved_at": "2024-05-01T00:00:00Z"})
    for player, achievement, game, points in [("p1", "first-blood", "g1", 10),
                                              ("p1", "marathon", "g1", 50),
                                              ("p2", "first-blood", "g1", 10),
                                              ("p1", "paddle", "g2", 5)]:
        repos["PlayerAchievement"].run("unlock_achievement", achievement={
            "player_id": player, "achievement_id": achievement, "game_id": game,
            "achievement_name": achievement.title(), "points": points,
            "unlocked_at": "2024-05-01T00:00:00Z"})
    for ranking, player, total in [(1, "p2", 12000), (2, "p3", 4500), (3, "p1", 980)]:
        repos["TournamentEntry"].put({"tournament_id": "t1", "ranking": ranking, "player_id": player,
                                      "player_name": player.upper(), "total_score": total,
                                      "matches_played": 3})
    return repos


def test_get_game_three_ways(repos: Repositories) -> None:
    assert repos["Game"].run("get_game", game_id="g1").title == "Tetris"
    assert repos["Game"].run("get_game_by_id", game_id="g2").max_players is None
    assert repos["Game"].run("get_game", game_id="g9") is None


def test_get_game_with_verification_checks_the_code(repos: Repositories) -> None:
    games = repos["Game"]
    assert games.run("get_game_with_verification", game_id="g1", verification_code="s3cret").title == "Tetris"
    assert games.run("get_game_with_verification", game_id="g1", verification_code="guess") is None
    assert games.run("get_game_with_verification", game_id="g2", verification_code="s3cret") is None


def test_list_games_scans_without_parameters(repos: Repositories) -> None:
    assert sorted(g.game_id for g in repos["Game"].run("list_games")) == ["g1", "g2"]


def test_scores_sort_as_numbers(repos: Repositories) -> None:
    page = repos["LeaderboardEntry"].run("get_top_scores", game_id="g1")
    assert [e.score for e in page] == [80, 900, 4500, 12000]
    top = repos["LeaderboardEntry"].run("get_top_scores", game_id="g1", descending=True, limit=2)
    assert [(e.player_id, e.score) for e in top] == [("p2", 12000), ("p3", 4500)]
    assert top.cursor is not None


def test_player_scores_through_a_gsi(repos: Repositories) -> None:
    page = repos["LeaderboardEntry"].run("get_player_scores", player_id="p1")
    assert sorted((e.game_id, e.score) for e in page) == [("g1", 80), ("g1", 900), ("g2", 7)]


def test_achievements(repos: Repositories) -> None:
    mine = repos["PlayerAchievement"].run("get_player_achievements", player_id="p1")
    assert [a.achievement_id for a in mine] == ["first-blood", "marathon", "paddle"]
    game = repos["PlayerAchievement"].run("get_game_achievements", game_id="g1")
    assert [(a.points, a.player_id) for a in game][-1] == (50, "p1")  # by points
    assert len(game) == 3


def test_tournament_rankings_and_update(repos: Repositories, module_ddb: DynamoDB) -> None:
    page = repos["TournamentEntry"].run("get_tournament_rankings", tournament_id="t1")
    assert [e.player_id for e in page] == ["p2", "p3", "p1"]
    before = sum(module_ddb.calls.values())
    with pytest.raises(ParameterError, match="nothing to update"):
        repos["TournamentEntry"].run("update_ranking", tournament_id="t1", ranking=3)
    assert sum(module_ddb.calls.values()) == before
    updated = repos["TournamentEntry"].run("update_ranking", tournament_id="t1", ranking=3,
                                           updates={"wins": 2, "prize_amount": "12.50"})
    assert (updated.wins, updated.prize_amount, updated.total_score) == (2, Decimal("12.5"), 980)
    assert repos["TournamentEntry"].run("update_ranking", tournament_id="t1", ranking=9,
                                        updates={"wins": 1}) is None
    with pytest.raises(ParameterError, match="primary key"):
        repos["TournamentEntry"].run("update_ranking", tournament_id="t1", ranking=3,
                                     updates={"ranking": 4})
