"""Row reading: MySQL connections and the records (rows plus their lookups, embeds and
aggregates) that the row-to-item mapping turns into items."""
