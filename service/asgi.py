"""What gunicorn serves: ``gunicorn service.asgi:app -k service.workers.BalancedUvicornWorker``.

Building the app reads settings and the spec only; the provider, the simulator and the database are reached
lazily on first use, after the worker has forked.
"""

from service.app import create_app

app = create_app()
