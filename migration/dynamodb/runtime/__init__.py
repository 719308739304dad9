"""The access-pattern runtime: every access pattern of a contract (or of a plain schema in
AWS's DynamoDB MCP format) run by name against DynamoDB.

Modules in the order a call uses them: `parameters` (check and convert what the
caller gives), `plans` (what a pattern turns into, worked out once), `repository`
(keys, conditions, the request and its answer), `pagination` (pages and resumable
cursors); `errors` holds what each of them raises. `migration.dynamodb.repository`
re-exports the public names."""

