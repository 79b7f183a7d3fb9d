"""bench/api_load.py's server settings: the production settings with the bench's URL table
(``bench/api_reference.py``: the product's URLs plus the reference view), and task queues of
its own name (``django_q:porfin-bench-api…`` in its Redis database), which the bench empties:
no worker runs there, so every send it makes leaves a delivery task behind."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_reference"
Q_CLUSTER = {**Q_CLUSTER, "name": "porfin-bench-api"}  # noqa: F405
