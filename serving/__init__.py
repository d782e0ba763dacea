"""The FastAPI scoring service and the reviewer pages."""
