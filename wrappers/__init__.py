"""Dual-write wrappers: the application's writes go to MySQL first, then to DynamoDB."""
