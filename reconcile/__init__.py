"""`reconcile`: the nightly job that finds drift between MySQL and DynamoDB and repairs it."""
