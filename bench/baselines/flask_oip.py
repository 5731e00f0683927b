"""The WSGI baseline for S1: a plain Flask app under gunicorn, OIP v2 JSON for the trivial model.

The same work per request as fastapi_oip.py: parse the JSON body, build a numpy array from `data`,
compute y = x + x, answer OIP JSON. Served by gunicorn with one worker process (plus gunicorn's
arbiter), the gthread worker class by default: it keeps connections alive as the load generator does,
where the sync worker closes the connection after every response (see bench/README.md, S1).

    /usr/bin/python3 bench/baselines/flask_oip.py --port 8003 [--host 127.0.0.1]
        [--worker-class gthread|sync] [--threads 1]
"""

import argparse
import json

import numpy as np
from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

app = Flask(__name__)


def json_response(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


@app.get("/v2/health/ready")
def ready() -> Response:
    return Response(status=200)


@app.get("/v2/health/live")
def live() -> Response:
    return Response(status=200)


@app.post("/v2/models/<name>/infer")
def infer(name: str) -> Response:
    try:
        body = json.loads(request.get_data())
        outputs = []
        for tensor in body["inputs"]:
            x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            y = x + x
            outputs.append(
                {"name": "y", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}
            )
    except (ValueError, KeyError, TypeError) as e:
        return json_response({"error": f"bad request: {e}"}, 400)
    return json_response({"model_name": name, "model_version": "1", "outputs": outputs})


class Gunicorn(BaseApplication):
    """gunicorn configured from this script's flags instead of its command line."""

    def __init__(self, wsgi_app, options: dict):
        self.wsgi_app = wsgi_app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.wsgi_app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    Gunicorn(
        app,
        {
            "bind": f"{args.host}:{args.port}",
            "workers": 1,
            "worker_class": args.worker_class,
            "threads": args.threads,
            # Connections stay open between requests (gthread); the load generator reuses them.
            "keepalive": 75,
            "backlog": 2048,
            "accesslog": None,
            "loglevel": "warning",
        },
    ).run()
