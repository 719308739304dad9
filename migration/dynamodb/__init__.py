"""Everything that talks to DynamoDB.

- `client`: the single choke point for every request (retries, typed errors,
  fault hooks, timing) and its fast path for pre-encoded bulk requests;
- `schema`, `history`: `migrate schema plan/apply/history`;
- `expressions`, `models`, `repository`: the access-pattern runtime (key
  templates, filter expressions, pagination, typed entities, optimistic locking);
- `transactions`, `cross_table`: the transaction builder and cross-table patterns;
- `codegen`: typed models and repositories generated from a contract.
"""
