"""Keeping DynamoDB in step with MySQL: the dependency graph of the contract, the
before/after images of a MySQL change, version-guarded DynamoDB writes, and the
outbox that records every change until DynamoDB has it.

Dual-write (`wrappers`), repair and backfill all sync through this package.
"""
