"""The reference shop of seed 003: its MySQL models, repositories, seed data and contract.

It is the application being migrated, and the toolkit's test bed.
"""
