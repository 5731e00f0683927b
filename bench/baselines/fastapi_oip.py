"""The Python baseline for S1: a plain FastAPI + uvicorn OIP v2 server for the trivial model.

What a minimal real Python server does per request: parse the JSON body, build a numpy array from
`data`, compute y = x + x, answer OIP JSON. One uvicorn worker; uvloop and httptools are used when
installed (uvicorn's "auto"), as in the research measurements.

    /usr/bin/python3 bench/baselines/fastapi_oip.py --port 8002 [--host 127.0.0.1]
"""

import argparse

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/v2/health/ready")
async def ready() -> Response:
    return Response(status_code=200)


@app.get("/v2/health/live")
async def live() -> Response:
    return Response(status_code=200)


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    try:
        body = await request.json()
        outputs = []
        for tensor in body["inputs"]:
            x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            y = x + x
            outputs.append(
                {"name": "y", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}
            )
    except (ValueError, KeyError, TypeError) as e:
        return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
    return JSONResponse({"model_name": name, "model_version": "1", "outputs": outputs})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, workers=1, access_log=False, log_level="warning")
