"""Run Microsoft's Azure ML inference server (`azmlinfsrv`) bound to 127.0.0.1.

`azmlinfsrv` binds every interface (0.0.0.0) and has no option to change that; this launcher
takes the same arguments, swaps the host for loopback and starts it, for local runs and tests::

    .tools/azmlinfsrv/bin/python -m adapters.azure.infsrv \\
        --entry_script adapters/azure/score.py --model_dir models/latest --port 5001
"""

from __future__ import annotations

LOOPBACK = "127.0.0.1"


def main() -> None:
    """Start the server on loopback with the command line's arguments."""
    from azureml_inference_server_http import amlserver

    # amlserver passes its module-level DEFAULT_HOST to gunicorn's bind at start-up.
    amlserver.DEFAULT_HOST = LOOPBACK
    amlserver.run()


if __name__ == "__main__":
    main()
