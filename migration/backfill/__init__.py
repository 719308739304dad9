"""`migrate backfill`: copy the rows that existed before dual-writing began, safely
beside live dual-writes, resumably, at close to the endpoint's ingest ceiling."""

from migration.backfill.run import BackfillOptions, BackfillSummary, backfill

__all__ = ["BackfillOptions", "BackfillSummary", "backfill"]
