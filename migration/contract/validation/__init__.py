"""The contract's validator, by the sections of the contract it checks: `reading` (the
file), `checker` (one value), `tables`, `entities`, `sources`, `patterns`. Every
problem is collected with the file, the JSON path and the reason."""
