"""The spark-submit entry point: the `migrate` command line, run in the driver that
spark-submit starts, so `--engine spark` jobs use its master and configuration.

    spark-submit --master yarn --files shop.yaml migration/spark/submit.py \\
        --contract shop.yaml backfill --engine spark --partitions 64

(`python -c 'import migration.spark.submit as m; print(m.__file__)'` prints this file's
path in an installed toolkit.) Also runnable as `python -m migration.spark.submit`.
"""

from __future__ import annotations

from migration.cli import main

if __name__ == "__main__":
    main()
