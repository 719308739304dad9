"""Local services for the demo and the tests: a MySQL-compatible server and DynamoDB Local."""
