"""bench/api_load.py's server settings: the production settings with the bench's URL table
(``bench/api_reference.py``: the product's URLs plus the reference view)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_reference"
