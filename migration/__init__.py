"""MySQL → DynamoDB dual-write migration toolkit.

The flow is contract → row reading → row-to-item mapping → DynamoDB writing;
dual-write (`wrappers`), backfill (`migration.backfill`) and reconcile
(`reconcile`) are three drivers of that one flow.
"""

__version__ = "0.1.0"
