"""The reference shop: its MySQL models, repositories, seed data and contract.

It is an application being migrated, built on the toolkit's public API only, and
the toolkit's test bed.
"""

from pathlib import Path

SHOP_CONTRACT = Path(__file__).parent / "contract.yaml"
