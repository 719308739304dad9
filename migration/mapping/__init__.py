"""Row-to-item mapping: the one function every path uses to turn a source record into an item."""

from migration.mapping.item import ItemMapper, item_size
from migration.mapping.values import Item, to_attribute

__all__ = ["Item", "ItemMapper", "item_size", "to_attribute"]
