"""Everything that talks to DynamoDB: the client choke point and schema management."""
