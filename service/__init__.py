"""Marketing Actions: backend of a Power Platform custom connector for marketing-automation platforms."""

import warnings as _warnings

__version__ = "0.1.0"

# Connexion imports starlette.testclient at import time, which then warns once per process that it would
# rather use httpx2. The service never uses the test client: nobody running it can act on that warning.
_warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated",
                         category=UserWarning)
