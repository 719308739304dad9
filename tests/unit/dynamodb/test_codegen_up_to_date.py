"""The committed generated shop code (migration/shop/generated) is exactly what
`migrate codegen` writes for the shop contract today."""

from __future__ import annotations

from pathlib import Path

from migration.contract.load import load_contract
from migration.dynamodb.codegen import generate
from migration.shop import SHOP_CONTRACT

COMMITTED = SHOP_CONTRACT.parent / "generated"
REGENERATE = (
    "migrate codegen --contract migration/shop/contract.yaml --out migration/shop/generated\n"
    "or: python -c 'from pathlib import Path; from migration.contract import load_contract; "
    "from migration.dynamodb.codegen import generate; generate(load_contract("
    "\"migration/shop/contract.yaml\"), Path(\"migration/shop/generated\"))'"
)


def test_the_committed_shop_code_is_up_to_date(tmp_path: Path) -> None:
    written = generate(load_contract(SHOP_CONTRACT), tmp_path)
    expected = {path.name: path.read_bytes() for path in written}
    committed = {path.name: path.read_bytes() for path in sorted(COMMITTED.glob("*.py"))}
    missing = sorted(set(expected) - set(committed))
    extra = sorted(set(committed) - set(expected))
    stale = sorted(name for name in set(expected) & set(committed) if expected[name] != committed[name])
    assert not (missing or extra or stale), (
        f"migration/shop/generated is out of date with the shop contract "
        f"(stale: {stale}, missing: {missing}, not generated: {extra}). Regenerate with:\n{REGENERATE}")
