"""The KServe baseline for S1: KServe's Python model server (kserve.ModelServer) serving the trivial model.

A custom kserve.Model as KServe's documentation writes one: predict() takes the OIP v2 InferRequest, computes
y = x + x with numpy, and returns an InferResponse. KServe's defaults otherwise (one uvicorn worker, its
latency logging), except: no gRPC server (a second port the benchmark does not use) and the HTTP server
listens on --host (127.0.0.1) instead of the 0.0.0.0 KServe hard-codes, so nothing listens beyond this machine.

Runs only when Debian's /usr/bin/python3 can `import kserve` (pip install kserve); the benchmark reports the
side as n/a otherwise. Written against KServe 0.11-0.14's API.

    /usr/bin/python3 bench/baselines/kserve_oip.py --port 8004 [--host 127.0.0.1]
"""

import argparse
import sys

import uvicorn

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8004)
# KServe's module-level parser reads sys.argv too (parse_known_args): hand it nothing of ours.
args, _ = parser.parse_known_args()
sys.argv = sys.argv[:1]

# KServe builds its uvicorn.Config with host="0.0.0.0"; keep the server on the benchmark's host.
_config_init = uvicorn.Config.__init__


def _config_on_host(self, *a, **kw):
    kw["host"] = args.host
    _config_init(self, *a, **kw)


uvicorn.Config.__init__ = _config_on_host

import kserve  # noqa: E402  (after the patch above, which its server picks up)
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402


class AddModel(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.load()

    def load(self) -> bool:
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, *rest, **kwargs) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        y = x + x
        out = InferOutput(name="y", shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=[out])


if __name__ == "__main__":
    print(f"kserve {getattr(kserve, '__version__', '?')} on http://{args.host}:{args.port}", flush=True)
    ModelServer(http_port=args.port, workers=1, enable_grpc=False).start([AddModel("add")])
