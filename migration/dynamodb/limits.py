"""DynamoDB's service limits, in one place: the numbers AWS documents, named once.

Every module that chunks a request or refuses an item reads its limit here, so a
limit is never written twice under two names.
"""

BATCH_WRITE_ITEMS = 25  # put and delete requests in one BatchWriteItem
BATCH_GET_KEYS = 100  # keys in one BatchGetItem
TRANSACTION_ACTIONS = 100  # actions in one TransactWriteItems or TransactGetItems
TRANSACTION_BYTES = 4 * 1024 * 1024  # the total size of one transaction
# What the writer puts in one transaction: the limit less room for the request's envelope.
TRANSACTION_PAYLOAD_BYTES = TRANSACTION_BYTES - 64 * 1024
ITEM_BYTES = 400 * 1024  # one item, attribute names included
PARTITION_KEY_BYTES = 2048  # a partition key value
SORT_KEY_BYTES = 1024  # a sort key value
NUMBER_DIGITS = 38  # significant digits of a number
GSI_KEY_ATTRIBUTES = 4  # attributes in one multi-attribute GSI key (partition or sort)
