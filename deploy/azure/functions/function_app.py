"""The Functions host indexes `app` from function_app.py at the app root; the functions are
registered in adapters/azure/function_app.py."""

from adapters.azure.function_app import app

__all__ = ["app"]
